package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kforge/kforge/cmd/kforge/internal/views"
	"github.com/kforge/kforge/config"
	"github.com/kforge/kforge/pki"
	"github.com/kforge/kforge/providers"
)

func (a *app) certsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "The cluster's certificates: list them, issue what is missing or due, mark some for renewal",
		Long: `Certificates, keys and kubeconfigs live in the state directory (--state, default .kforge beside the
configuration) under pki/: the directory 0700, keys 0600. CAs are made once and always reused.`,
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "Show every certificate the cluster needs: subject, SANs, expiry, days left, and what the next issue would do",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cs, err := a.certsSession(c.Context(), "")
			if err != nil {
				return err
			}
			defer cs.close()
			return a.certsView().List(certRows(cs.store, cs.changes, false))
		},
	}
	issue := &cobra.Command{
		Use:   "issue",
		Short: "Issue what is missing, re-issue what changed or is due, and write the kubeconfigs and the encryption config",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cs, err := a.certsSession(c.Context(), "certs issue")
			if err != nil {
				return err
			}
			defer cs.close()
			cluster, store, changes := cs.cluster, cs.store, cs.changes
			if err := pki.Apply(store, pki.CFSSL{}, changes, cluster.PKI); err != nil {
				return err
			}
			if _, err := pki.EnsureEncryptionConfig(store, cluster.SecretsEncryption, time.Now()); err != nil {
				return err
			}
			kubeconfigs, err := pki.WriteKubeconfigs(store, cluster)
			if err != nil {
				return err
			}
			if err := syncFiles(c.Context(), cs.backend); err != nil {
				return err
			}
			return a.certsView().Issued(certRows(store, changes, true), kubeconfigs)
		},
	}
	var all bool
	renew := &cobra.Command{
		Use:   "renew [NAME...]",
		Short: "Mark certificates for re-issue (all with --all); the next issue or apply re-issues them",
		RunE: func(c *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return errors.New("name the certificates to renew, or give --all")
			}
			cs, err := a.certsSession(c.Context(), "certs renew")
			if err != nil {
				return err
			}
			defer cs.close()
			cluster, store := cs.cluster, cs.store
			known := map[string]bool{}
			var certs []string
			for _, s := range pki.Catalog(cluster) {
				if s.Kind == pki.KindCert {
					known[s.Name] = true
					certs = append(certs, s.Name)
				}
			}
			if all {
				args = certs
			}
			marked, err := store.RenewRequested()
			if err != nil {
				return err
			}
			for _, n := range args {
				if !known[n] {
					return fmt.Errorf("there is no certificate %q (kforge certs list shows them; CAs are not renewed this way)", n)
				}
				marked[n] = true
			}
			if err := store.SetRenewRequested(marked); err != nil {
				return err
			}
			if err := syncFiles(c.Context(), cs.backend); err != nil {
				return err
			}
			return a.certsView().Renew(args)
		},
	}
	renew.Flags().BoolVar(&all, "all", false, "mark every certificate (not the CAs)")
	rotateCA := &cobra.Command{
		Use:   "rotate-ca [CA...]",
		Short: "Replace CAs (all three by default) through two applies, the old and the new trusted meanwhile",
		Long: `Makes a new CA for each of ca, etcd-ca and front-proxy-ca (or those named) and starts a rotation that
the next applies carry out: the first has every host trust the old and the new CA, the second re-issues every
certificate with the new CA and then puts the new CA in the old one's place (the old is kept in pki/ as
NAME.retired-DATE); a third apply removes the old CA from the hosts. Each plan says which step comes.`,
		RunE: func(c *cobra.Command, args []string) error {
			cs, err := a.certsSession(c.Context(), "certs rotate-ca")
			if err != nil {
				return err
			}
			defer cs.close()
			cluster, store := cs.cluster, cs.store
			if len(args) == 0 {
				args = []string{pki.ClusterCA, pki.EtcdCA, pki.FrontProxyCA}
			}
			r, err := pki.StartRotation(store, pki.CFSSL{}, pki.Catalog(cluster), args, cluster.PKI, time.Now())
			if err != nil {
				return err
			}
			if err := syncFiles(c.Context(), cs.backend); err != nil {
				return err
			}
			return a.certsView().RotationStarted(r)
		},
	}
	cmd.AddCommand(list, issue, renew, rotateCA)
	return cmd
}

func (a *app) certsView() views.Certs {
	if a.json {
		return &views.CertsJSON{Out: a.stdout}
	}
	return &views.CertsHuman{Out: a.stdout}
}

// certsSession is a certs command's hold on the PKI store: the configuration, the backend (locked for an
// operation that writes) and what the store lacks.
type certsSession struct {
	*hold
	cluster *config.Cluster
	store   *pki.Store
	changes []pki.Change
}

func (a *app) certsSession(ctx context.Context, operation string) (*certsSession, error) {
	cluster, err := a.loadCluster(ctx, a.configPath)
	if err != nil {
		return nil, err
	}
	h, err := a.holdBackend(ctx, cluster, operation)
	if err != nil {
		return nil, err
	}
	cs := &certsSession{hold: h, cluster: cluster}
	if err := cs.open(ctx); err != nil {
		cs.close()
		return nil, err
	}
	return cs, nil
}

func (cs *certsSession) open(ctx context.Context) error {
	files, err := cs.backend.Files(ctx)
	if err != nil {
		return err
	}
	if cs.store, err = pki.OpenStore(filepath.Join(files, "pki")); err != nil {
		return err
	}
	cs.changes, err = pki.Plan(pki.Catalog(cs.cluster), cs.store, cs.cluster.PKI, time.Now())
	return err
}

func (cs *certsSession) close() { cs.release() }

// loadCluster loads and validates the configuration and adds the providers' hosts; diagnostics are printed.
func (a *app) loadCluster(ctx context.Context, path string) (*config.Cluster, error) {
	return a.load(ctx, path, true)
}

// load loads and validates the configuration at path, and with hosts adds the providers' hosts (commands that
// need only its settings, such as the backend's, leave them unresolved); diagnostics are printed.
func (a *app) load(ctx context.Context, path string, hosts bool) (*config.Cluster, error) {
	loader := config.NewLoader()
	cluster, diags := loader.Load(a.loadOptions(path))
	if hosts && cluster != nil && len(cluster.Providers) > 0 {
		reg := a.providers()
		diags = append(diags, reg.Validate(cluster)...)
		if !diags.HasErrors() {
			diags = append(diags, reg.Resolve(ctx, cluster, providers.Env{StateDir: a.statePath(path)})...)
		}
	}
	views.WriteDiagnostics(a.stderr, loader.Files(), a.terminal(a.stderr), diags)
	if diags.HasErrors() {
		return nil, exitCode(exitError)
	}
	return cluster, nil
}

// certRows describes the plan; after issuing, what was done is the status.
func certRows(store *pki.Store, changes []pki.Change, issued bool) []views.CertRow {
	now := time.Now()
	var rows []views.CertRow
	for _, ch := range changes {
		r := views.CertRow{Name: ch.Spec.Name, Kind: string(ch.Spec.Kind), Hosts: ch.Spec.Hosts, Status: "ok", Reason: ch.Reason}
		if ch.Action != pki.ActionKeep {
			r.Status = string(ch.Action)
		}
		if ch.Spec.Kind != pki.KindKeyPair {
			r.Subject = "CN=" + ch.Spec.CN
			if len(ch.Spec.O) > 0 {
				r.Subject += ", O=" + strings.Join(ch.Spec.O, "+")
			}
		}
		r.SANs = append(r.SANs, ch.Spec.DNSNames...)
		for _, ip := range ch.Spec.IPs {
			r.SANs = append(r.SANs, ip.String())
		}
		notAfter := ch.NotAfter
		if issued || notAfter.IsZero() {
			if e, err := store.Read(ch.Spec.Name); err == nil && e.Cert != nil {
				notAfter = e.Cert.NotAfter
			}
		}
		if !notAfter.IsZero() && (issued || ch.Action != pki.ActionIssue) {
			days := int(notAfter.Sub(now).Hours() / 24)
			r.NotAfter, r.DaysLeft = notAfter.UTC().Format(time.RFC3339), &days
		}
		rows = append(rows, r)
	}
	return rows
}
