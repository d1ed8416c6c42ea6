package skew

import (
	"strings"
	"testing"

	"github.com/kforge/kforge/provision/resource"
)

func bin(path, version string) resource.Resource {
	return resource.Resource{Kind: resource.Binary, Name: path, Version: version}
}

// cluster is one control-plane host with etcd and one worker, at the given versions.
func cluster(k8s, etcd string) map[string][]resource.Resource {
	return map[string][]resource.Resource{
		"cp-1": {bin("/usr/local/bin/etcd", "etcd "+etcd), bin("/usr/local/bin/kube-apiserver", "kube-apiserver "+k8s),
			bin("/usr/local/bin/kube-scheduler", "kube-scheduler "+k8s), bin("/usr/local/bin/kubelet", "kubelet "+k8s),
			bin("/opt/cni/bin/bridge", "CNI bridge")},
		"worker-1": {bin("/usr/local/bin/kubelet", "kubelet "+k8s), bin("/usr/local/bin/kube-proxy", "kube-proxy "+k8s),
			bin("/usr/local/bin/containerd", "containerd v2.4.2")},
	}
}

// placed is what the state records for a cluster at these versions.
func placed(k8s, etcd string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for h, rs := range cluster(k8s, etcd) {
		out[h] = map[string]string{}
		for _, r := range rs {
			out[h][r.Name] = r.Version
		}
	}
	return out
}

func TestVersionSkew(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, etcdFrom, etcdTo string
		allowDowngrade                   bool
		want                             []string // substrings of the error; none means no error
	}{
		{name: "same versions", from: "v1.37.2", to: "v1.37.2", etcdFrom: "v3.7.3", etcdTo: "v3.7.3"},
		{name: "a patch release", from: "v1.37.1", to: "v1.37.2", etcdFrom: "v3.7.3", etcdTo: "v3.7.3"},
		{name: "the next minor", from: "v1.36.4", to: "v1.37.2", etcdFrom: "v3.6.5", etcdTo: "v3.7.3"},
		{name: "two minors at once", from: "v1.35.3", to: "v1.37.2", etcdFrom: "v3.7.3", etcdTo: "v3.7.3",
			want: []string{"kube-apiserver on cp-1: v1.35.3 → v1.37.2 skips v1.36", "upgrade to v1.36.x first", "kube-scheduler on cp-1"}},
		{name: "etcd two minors", from: "v1.37.2", to: "v1.37.2", etcdFrom: "v3.5.9", etcdTo: "v3.7.3",
			want: []string{"etcd on cp-1: v3.5.9 → v3.7.3 skips v3.6"}},
		{name: "a downgrade", from: "v1.37.2", to: "v1.37.1", etcdFrom: "v3.7.3", etcdTo: "v3.7.3",
			want: []string{"kube-apiserver on cp-1: v1.37.2 → v1.37.1 is a downgrade", "kubelet on worker-1", "--allow-downgrade"}},
		{name: "a downgrade, allowed", from: "v1.37.2", to: "v1.36.9", etcdFrom: "v3.7.3", etcdTo: "v3.7.3", allowDowngrade: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := cluster(tc.to, tc.etcdTo)
			err := Check(want, placed(tc.from, tc.etcdFrom), tc.allowDowngrade)
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
		})
	}
}

// TestNodeAgentsStayWithinSkew: a kubelet may trail the API server by three minors while it waits for its turn,
// not more; a new host has nothing to trail.
func TestNodeAgentsStayWithinSkew(t *testing.T) {
	want := cluster("v1.37.2", "v3.7.3")
	p := placed("v1.36.0", "v3.7.3")
	p["worker-1"]["/usr/local/bin/kubelet"] = "kubelet v1.34.1" // three behind the new API server: allowed
	if err := Check(want, p, false); err != nil {
		t.Errorf("kubelet three minors behind: %v", err)
	}
	p["worker-1"]["/usr/local/bin/kubelet"] = "kubelet v1.33.7"
	if err := Check(want, p, false); err == nil || !strings.Contains(err.Error(), "kubelet on worker-1: v1.33.7 would be more than 3 minor versions older than the API server (v1.37.2)") {
		t.Errorf("kubelet four minors behind: %v", err)
	}
	delete(p, "worker-1")
	if err := Check(want, p, false); err != nil {
		t.Errorf("a new host: %v", err)
	}
}
