package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/providers"
	"github.com/kforge/kforge/providers/lab"
	"github.com/kforge/kforge/providers/vagrant"
)

// Exit codes, Terraform's where Terraform has one.
const (
	exitOK        = 0
	exitError     = 1
	exitFmtChange = 3 // fmt --check found files to rewrite
)

// exitCode ends a command with a code and nothing more to print: the view has said everything.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// app holds the process's streams and the global options; every command reads them from here.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            []string

	configPath string
	stateDir   string
	json       bool
	noColor    bool
	vars       []string
	varFiles   []string

	ignorePreflight []string
	allowDowngrade  bool
	lockTimeout     time.Duration
	purgeData       bool // destroy --purge-data
}

func newApp(stdin io.Reader, stdout, stderr io.Writer, env []string) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, env: env}
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "kforge",
		Short:         "Declarative Kubernetes clusters over SSH: plan, then apply",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetIn(a.stdin)
	pf := root.PersistentFlags()
	pf.StringVarP(&a.configPath, "config", "c", ".", "configuration file, or directory whose *.hcl files are merged")
	pf.StringVar(&a.stateDir, "state", "", "state directory (default: .kforge beside the configuration)")
	pf.BoolVar(&a.json, "json", false, "machine-readable JSON output")
	pf.BoolVar(&a.noColor, "no-color", false, "no colour in output (also: NO_COLOR)")
	pf.StringArrayVar(&a.vars, "var", nil, "set a variable: NAME=VALUE (repeatable; beats KFORGE_VAR_NAME and *.kfvars)")
	pf.StringArrayVar(&a.varFiles, "var-file", nil, "read variables from a .kfvars file (repeatable)")
	pf.StringSliceVar(&a.ignorePreflight, "ignore-preflight", nil, "preflight check IDs whose errors are only warnings (preflight, plan, apply)")
	pf.BoolVar(&a.allowDowngrade, "allow-downgrade", false, "plan and apply versions older than those on the hosts (refused otherwise)")
	pf.DurationVar(&a.lockTimeout, "lock-timeout", 0, "wait this long for the state lock while another run holds it (0: fail at once)")
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error { return a.flagsFromEnv(c) }
	root.AddCommand(a.versionCmd(), a.validateCmd(), a.fmtCmd(), a.planCmd(), a.applyCmd(), a.showCmd(), a.destroyCmd(),
		a.initCmd(), a.forceUnlockCmd(), a.stateCmd(), a.preflightCmd(), a.certsCmd(), a.kubeconfigCmd(), a.labCmd(), a.etcdCmd())
	return root
}

// flagsFromEnv gives every global option not set on the command line the value of its KFORGE_ variable
// (--lock-timeout: KFORGE_LOCK_TIMEOUT), for pipelines that configure runs through the environment. --var and
// --var-file have KFORGE_VAR_NAME instead.
func (a *app) flagsFromEnv(c *cobra.Command) error {
	var err error
	c.Root().PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "var" || f.Name == "var-file" {
			return
		}
		name := envName(f.Name)
		for _, kv := range a.env {
			if v, ok := strings.CutPrefix(kv, name+"="); ok {
				if serr := f.Value.Set(v); serr != nil {
					err = fmt.Errorf("%s=%s: %v (it stands for --%s)", name, v, serr, f.Name)
				}
				return
			}
		}
	})
	return err
}

// envName is the environment variable of a global option: KFORGE_ and its name in upper case, '-' as '_'.
func envName(flag string) string {
	return "KFORGE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func (a *app) execute(args []string) int {
	root := a.root()
	root.SetArgs(args)
	err := root.Execute()
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	default:
		fmt.Fprintf(a.stderr, "Error: %v\n", err)
		return exitError
	}
}

// loadOptions turns the global flags into what the config loader needs.
func (a *app) loadOptions(path string) config.Options {
	home, _ := os.UserHomeDir()
	return config.Options{Path: path, Vars: a.vars, VarFiles: a.varFiles, Env: a.env, Home: home,
		Providers: a.providers().Names()}
}

// providers are the host providers this build has.
func (a *app) providers() providers.Registry {
	return providers.Registry{"lab": lab.Provider{Manager: a.labManager(nil)}, "vagrant": vagrant.Provider{}}
}

// statePath is --state, or .kforge beside the configuration.
func (a *app) statePath(configPath string) string {
	if a.stateDir != "" {
		return a.stateDir
	}
	return filepath.Join(configDirOf(configPath), ".kforge")
}

// configDirOf is the directory of a configuration (a file or a directory): where its state and lock file live.
func configDirOf(path string) string {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return filepath.Dir(path)
	}
	return path
}

func (a *app) terminal(w io.Writer) views.Terminal {
	return views.DetectTerminal(w, a.noColor, a.env)
}
