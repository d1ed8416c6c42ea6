package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/providers/lab"
	"github.com/kforge/kforge/providers/lab/labtest"
)

// The 3-host cluster of the lab measurements, and the worker they add.
var labFixture = labtest.New("kbench", 4)

func TestMain(m *testing.M) { os.Exit(labFixture.Main(m)) }

// TestBenchmarks runs every measurement `make bench` reports, prints the table and keeps it in bench/results/.
// KFORGE_BENCH=1 turns it on (it takes minutes, starts 100 hosts and runs Ansible); KFORGE_BENCH_ONLY=plan,push,
// lab,go runs some sections.
func TestBenchmarks(t *testing.T) {
	if os.Getenv("KFORGE_BENCH") == "" {
		t.Skip("make bench runs this (KFORGE_BENCH=1): minutes of work, 100 hosts, Ansible")
	}
	only := os.Getenv("KFORGE_BENCH_ONLY")
	want := func(section string) bool { return only == "" || strings.Contains(","+only+",", ","+section+",") }
	bin := buildKforge(t)
	var rows []Row
	if want("plan") || want("push") {
		rows = append(rows, hostRows(t, bin, want("plan"), want("push"))...)
	}
	if want("lab") {
		rows = append(rows, labRows(t, bin)...)
	}
	if want("go") {
		rows = append(rows, goBenchRows(t)...)
	}
	report := Render(DescribeMachine(time.Now(), ansibleVersion()), "Ansible", rows)
	fmt.Print("\n" + report + "\n")
	name := filepath.Join("results", time.Now().UTC().Format("2006-01-02T1504")+".md")
	if err := os.MkdirAll("results", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("Written to bench/%s\n", name)
}

func buildKforge(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kforge")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/kforge").CombinedOutput(); err != nil {
		t.Fatalf("build kforge: %v\n%s", err, out)
	}
	return bin
}

// run is one timed run of a command, with its peak RSS.
type run struct {
	took           time.Duration
	peakRSS        int64 // bytes
	stdout, stderr string
}

// timed runs a command, failing the test if it fails.
func timed(t *testing.T, env []string, name string, args ...string) run {
	t.Helper()
	r, err := timedAllowFail(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, tail(r.stdout, 30), tail(r.stderr, 30))
	}
	return r
}

// timedAllowFail runs a command and measures it, for commands whose failure is an answer (preflight).
func timedAllowFail(env []string, name string, args ...string) (run, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := run{took: time.Since(start), stdout: out.String(), stderr: errOut.String()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.peakRSS = ru.Maxrss << 10
		}
	}
	return r, err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}

// labRows: on a 3-host lab cluster (1 control plane, 2 workers), apply from nothing with the artifacts cached,
// a no-op apply, and adding a worker with each pod-network plugin (how long, and how many hosts its plan touched).
func labRows(t *testing.T, bin string) []Row {
	var rows []Row
	for _, plugin := range config.NetworkPlugins {
		rows = append(rows, labCluster(t, bin, plugin)...)
	}
	return rows
}

// labCluster measures one plugin's cluster: the apply rows for the default plugin, adding a worker for each.
func labCluster(t *testing.T, bin, plugin string) []Row {
	l := labFixture.Get(t)
	set := labtest.ArtifactSet(t)
	dir := t.TempDir()
	write := func(n int) {
		blocks := strings.Split(lab.HostsHCL(l), "\nhost ")[1:]
		src := fmt.Sprintf("cluster \"bench\" {\n  pod_cidr     = \"198.19.0.0/17\"\n  service_cidr = \"198.19.128.0/20\"\n"+
			"  %s\n  network {\n    plugin = %q\n  }\n}\n\nartifacts {\n  source = \"local\"\n  dir    = %q\n}\n", labtest.ClusterSettings, plugin, set)
		for _, b := range blocks[:n] {
			src += "\nhost " + b
		}
		if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(3)
	first := timed(t, nil, bin, "-c", dir, "apply", "--auto-approve")
	var rows []Row
	if plugin == config.PluginRoutes { // the apply rows are the default plugin's
		noop := timed(t, nil, bin, "-c", dir, "apply", "--auto-approve")
		rows = append(rows,
			Row{Section: "3-host lab cluster", Case: "apply from nothing (artifacts cached)", Kforge: first.took,
				Notes: fmt.Sprintf("until every node is Ready; %s peak RSS", mib(first.peakRSS)), Target: "< 90 s", Met: Met(first.took < 90*time.Second)},
			Row{Section: "3-host lab cluster", Case: "no-op apply", Kforge: noop.took, Target: "< 5 s", Met: Met(noop.took < 5*time.Second)})
	}
	write(4)
	touched, api := hostsTouched(t, timed(t, nil, bin, "-c", dir, "plan", "--json").stdout)
	add := timed(t, nil, bin, "-c", dir, "apply", "--auto-approve")
	timed(t, nil, bin, "-c", dir, "destroy", "--auto-approve", "--purge-data")
	return append(rows, Row{Section: "3-host lab cluster", Case: "add a worker, network plugin " + plugin, Kforge: add.took,
		Notes:  fmt.Sprintf("add a worker: hosts touched: %d (+ the API objects, applied from %d control-plane host)", touched, api),
		Target: "touches only the new host", Met: Met(touched == 1)})
}

// hostsTouched counts the hosts with changes in a JSON plan other than the API objects the control plane
// applies, and the hosts where those objects change.
func hostsTouched(t *testing.T, planJSON string) (touched, api int) {
	t.Helper()
	var p struct {
		Hosts []struct {
			Changes []struct {
				Name string `json:"name"`
			} `json:"changes"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(planJSON), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, planJSON)
	}
	for _, h := range p.Hosts {
		objects, other := false, false
		for _, c := range h.Changes {
			if c.Name == "/etc/kubernetes/kforge/objects.yaml" || c.Name == "kforge-objects.service" {
				objects = true
			} else {
				other = true
			}
		}
		if objects {
			api++
		}
		if other {
			touched++
		}
	}
	return touched, api
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// goBenchRows runs the Go benchmarks of earlier issues once each and reads their figures: PKI for 1000 nodes and
// an SSH upload against scp.
func goBenchRows(t *testing.T) []Row {
	pkiOut := timed(t, nil, "go", "test", "-run", "^$", "-bench", "BenchmarkIssueFullSet/1000-nodes$", "-benchtime", "1x", "../pki").stdout
	upOut := timed(t, nil, "go", "test", "-run", "^$", "-bench", "BenchmarkUploadVersusSCP$", "-benchtime", "1x", "../provision/ssh").stdout
	pkiSecs := metric(t, pkiOut, "s/full-set")
	kforgeRate, scpRate := metric(t, upOut, "kforge-MiB/s"), metric(t, upOut, "scp-MiB/s")
	pki := time.Duration(pkiSecs * float64(time.Second))
	return []Row{
		{Section: "PKI", Case: "1000 nodes (every certificate and key)", Kforge: pki,
			Notes: fmt.Sprintf("%.0f certificates", metric(t, pkiOut, "certificates")), Target: "< 5 s", Met: Met(pki < 5*time.Second)},
		{Section: "SSH upload", Case: "256 MiB to one host", Kforge: time.Duration(256 / kforgeRate * float64(time.Second)),
			Notes: fmt.Sprintf("kforge %.0f MiB/s, scp %.0f MiB/s: %.2f of scp's speed", kforgeRate, scpRate, kforgeRate/scpRate)},
	}
}

// metric reads a ReportMetric figure from `go test -bench` output.
func metric(t *testing.T, out, unit string) float64 {
	t.Helper()
	re := regexp.MustCompile(`([0-9.e+-]+) ` + regexp.QuoteMeta(unit) + `(\s|$)`)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.HasPrefix(sc.Text(), "Benchmark") {
			v, err := strconv.ParseFloat(m[1], 64)
			if err == nil {
				return v
			}
		}
	}
	t.Fatalf("no %s in:\n%s", unit, out)
	return 0
}

// ansibleVersion is ansible-core's version line, for the machine description.
func ansibleVersion() string {
	out, err := exec.Command("ansible", "--version").Output()
	if err != nil {
		return "Ansible not installed"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.NewReplacer("[", "", "]", "").Replace(first))
}
