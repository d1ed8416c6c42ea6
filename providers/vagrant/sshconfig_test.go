package vagrant

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSSHConfigFixtures(t *testing.T) {
	vagrantEntry := func(name string, port, line int, keys ...string) sshEntry {
		return sshEntry{Name: name, HostName: "127.0.0.1", User: "vagrant", Port: port, IdentityFiles: keys, Line: line}
	}
	tests := []struct {
		fixture string
		want    []sshEntry
	}{
		{"three-machines.txt", []sshEntry{
			vagrantEntry("cp", 2222, 1, "/home/ana/cluster/.vagrant/machines/cp/virtualbox/private_key"),
			vagrantEntry("worker-1", 2200, 14, "/home/ana/cluster/.vagrant/machines/worker-1/virtualbox/private_key"),
			vagrantEntry("worker-2", 2201, 27,
				"/home/ana/cluster/.vagrant/machines/worker-2/virtualbox/private_key",
				"/home/ana/.vagrant.d/insecure_private_keys/vagrant.key.ed25519",
				"/home/ana/.vagrant.d/insecure_private_keys/vagrant.key.rsa"),
		}},
		{"space-in-path.txt", []sshEntry{{
			Name: "default", HostName: "127.0.0.1", User: "debian", Port: 2200, Line: 1,
			IdentityFiles: []string{"/home/ana/My Boxes/lab/.vagrant/machines/default/virtualbox/private_key"},
		}}},
		{"mixed-case.txt", []sshEntry{
			{Name: "node-a", HostName: "192.168.121.34", User: "root", Port: 22, Line: 4,
				IdentityFiles: []string{"/home/ana/.ssh/id_ed25519_lab"}},
			// The second Port is ignored, as ssh does: the first value of a setting wins.
			{Name: "node-b", HostName: "192.168.121.35", User: "vagrant", Port: 2201, Line: 11,
				IdentityFiles: []string{"/home/ana/keys/lab key", "/home/ana/.ssh/id_rsa"}},
		}},
		{"proxy-command.txt", []sshEntry{{
			Name: "edge", HostName: "10.20.0.15", User: "admin", Port: 22, Line: 1,
			IdentityFiles: []string{"/home/ana/edge/.vagrant/machines/edge/aws/private_key"},
			ProxyCommand:  "ssh -q -W %h:%p -i /home/ana/.ssh/jump admin@jump.example.net",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseSSHConfig(data)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseSSHConfigInline(t *testing.T) {
	tests := []struct {
		name, in string
		want     []sshEntry
		wantErr  string
	}{
		{name: "empty output", in: "", want: nil},
		{name: "only a notice", in: "==> cp: machine not created\n", want: nil},
		{
			name: "windows line endings",
			in:   "Host cp\r\n  HostName 127.0.0.1\r\n  User vagrant\r\n  Port 2222\r\n  IdentityFile C:/Users/ana/key\r\n",
			want: []sshEntry{{Name: "cp", HostName: "127.0.0.1", User: "vagrant", Port: 2222, IdentityFiles: []string{"C:/Users/ana/key"}, Line: 1}},
		},
		{
			name: "settings kforge does not read, with or without values",
			in:   "Host cp\n  ForwardX11\n  SetEnv A=1 B=2\n  HostName 127.0.0.1\n",
			want: []sshEntry{{Name: "cp", HostName: "127.0.0.1", Line: 1}},
		},
		{
			name: "ProxyCommand none",
			in:   "Host cp\n  ProxyCommand none\n",
			want: []sshEntry{{Name: "cp", ProxyCommand: "none", Line: 1}},
		},
		{name: "port out of range", in: "Host cp\n  Port 70000\n", wantErr: `line 2: port "70000" is not a number from 1 to 65535`},
		{name: "port not a number", in: "Host cp\n  Port ssh\n", wantErr: `line 2: port "ssh" is not a number from 1 to 65535`},
		{name: "unterminated quote", in: "Host cp\n  IdentityFile \"/home/ana/a key\n", wantErr: `line 2: unterminated quote in "\"/home/ana/a key"`},
		{name: "keyword without value", in: "Host cp\n  HostName\n", wantErr: "line 2: HostName without a value"},
		{name: "two names", in: "Host cp worker\n", wantErr: "line 1: Host with 2 names, where Vagrant prints one machine name"},
		{name: "machine twice", in: "Host cp\n  Port 2222\nHost cp\n", wantErr: `line 3: machine "cp" was already described at line 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSSHConfig([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestSplitArgs(t *testing.T) {
	tests := map[string][]string{
		`a b`:                   {"a", "b"},
		"  a\t\tb  ":            {"a", "b"},
		`"/a b/c"`:              {"/a b/c"},
		`"/a b"/c d`:            {"/a b/c", "d"},
		`""`:                    {""},
		`x "y z" w`:             {"x", "y z", "w"},
		strings.Repeat(" ", 3):  nil,
		`/home/ana/.ssh/id_rsa`: {"/home/ana/.ssh/id_rsa"},
	}
	for in, want := range tests {
		got, err := splitArgs(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
