package pki

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kforge/kforge/config"
)

// A CA rotation replaces CAs without a moment when two parts of the cluster distrust each other. It takes two
// applies, each finished on every host before the next starts:
//
//  1. trust: every host trusts the old and the new CA (the CA files and kubeconfigs carry both); the
//     certificates stay as they are.
//  2. sign: every certificate under a rotating CA is re-issued by the new CA; both are still trusted.
//
// Once step 2 is applied, the new CA replaces the old in the store (kept as NAME.retired-DATE), and the next
// plan drops the old CA from the hosts like any other change.
type Rotation struct {
	CAs     []string  `json:"cas"`
	Step    int       `json:"step"`
	Started time.Time `json:"started"`
}

// Rotation steps. stepPromote is recorded while the new CAs move into the old ones' place, so that a run killed
// meanwhile has the move finished when the store is next opened.
const (
	StepTrust   = 1
	StepSign    = 2
	stepPromote = 3
)

const rotationFile = "rotate-ca.json"

// nextCA is where a rotation keeps the new CA until it replaces the old.
func nextCA(ca string) string { return ca + ".next" }

// Rotation is the rotation in progress, nil when there is none.
func (s *Store) Rotation() (*Rotation, error) {
	data, err := s.ReadFile(rotationFile)
	if err != nil || data == nil {
		return nil, err
	}
	var r Rotation
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.Dir, rotationFile), err)
	}
	if r.Step < StepTrust || r.Step > stepPromote || len(r.CAs) == 0 {
		return nil, fmt.Errorf("%s: step %d of CAs %v is not a rotation kforge makes", filepath.Join(s.Dir, rotationFile), r.Step, r.CAs)
	}
	return &r, nil
}

// Rotating says whether ca is being rotated, and at which step (0: not).
func (r *Rotation) Rotating(ca string) int {
	if r == nil || !slices.Contains(r.CAs, ca) {
		return 0
	}
	return r.Step
}

// Signing is the store name of the CA that signs for ca now: the new one at the sign step of ca's rotation,
// otherwise ca itself.
func (r *Rotation) Signing(ca string) string {
	if r.Rotating(ca) == StepSign {
		return nextCA(ca)
	}
	return ca
}

// Describe is what a plan says about the rotation: which step the next apply makes.
func (r *Rotation) Describe() string {
	cas := strings.Join(r.CAs, ", ")
	if r.Step == StepTrust {
		return fmt.Sprintf("CA rotation of %s, step 1 of 2: every host is to trust the old and the new CA; the apply after this one re-issues the certificates with the new CA", cas)
	}
	return fmt.Sprintf("CA rotation of %s, step 2 of 2: every certificate is to be re-issued by the new CA; after this apply the new CA replaces the old and the next plan removes the old from the hosts", cas)
}

// StartRotation makes a new CA for each of cas (specs say what each must be) and records step 1.
func StartRotation(s *Store, iss Issuer, specs []Spec, cas []string, p config.PKI, now time.Time) (*Rotation, error) {
	if r, err := s.Rotation(); err != nil || r != nil {
		if err == nil {
			err = fmt.Errorf("a rotation of %s is at step %d of 2: apply to go on with it", strings.Join(r.CAs, ", "), r.Step)
		}
		return nil, err
	}
	byName := map[string]Spec{}
	for _, spec := range specs {
		byName[spec.Name] = spec
	}
	for _, ca := range cas {
		spec, ok := byName[ca]
		if !ok || spec.Kind != KindCA {
			return nil, fmt.Errorf("%s is not one of the cluster's CAs (%s)", ca, strings.Join(caNames(specs), ", "))
		}
		if e, err := s.Read(ca); err != nil || e.Cert == nil || e.Key == nil {
			if err == nil {
				err = fmt.Errorf("%s is not issued yet: nothing to rotate", ca)
			}
			return nil, err
		}
	}
	for _, ca := range cas {
		spec := byName[ca]
		pair, err := iss.NewCA(Request{CN: spec.CN, O: spec.O, KeyAlgorithm: p.KeyAlgorithm, KeySize: p.KeySize, Validity: p.CAValidity})
		if err != nil {
			return nil, err
		}
		if err := s.Write(nextCA(ca), pair); err != nil {
			return nil, err
		}
	}
	r := &Rotation{CAs: cas, Step: StepTrust, Started: now.UTC()}
	return r, s.writeRotation(r)
}

func caNames(specs []Spec) []string {
	var out []string
	for _, spec := range specs {
		if spec.Kind == KindCA {
			out = append(out, spec.Name)
		}
	}
	return out
}

func (s *Store) writeRotation(r *Rotation) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return s.WriteFile(rotationFile, append(data, '\n'), 0o600)
}

// AdvanceRotation records that the current step is applied on every host: step 1 moves to step 2; after step 2
// the new CAs replace the old ones (kept as NAME.retired-STARTED.crt and .key) and the rotation ends. Each move
// can be repeated, so a run killed halfway finishes it the next time. It returns the rotation as it now stands
// (nil once ended).
func (s *Store) AdvanceRotation() (*Rotation, error) {
	r, err := s.Rotation()
	if err != nil || r == nil {
		return nil, err
	}
	if r.Step == StepTrust {
		r.Step = StepSign
		return r, s.writeRotation(r)
	}
	if r.Step == StepSign {
		r.Step = stepPromote
		if err := s.writeRotation(r); err != nil {
			return nil, err
		}
	}
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(s.Dir, name)); return err == nil }
	for _, ca := range r.CAs {
		retired := ca + ".retired-" + r.Started.Format("20060102T150405Z")
		for _, ext := range []string{".crt", ".key"} {
			if exists(nextCA(ca)+ext) && !exists(retired+ext) {
				old, err := s.ReadFile(ca + ext)
				if err != nil {
					return nil, err
				}
				if err := s.WriteFile(retired+ext, old, 0o600); err != nil {
					return nil, err
				}
			}
		}
		for _, ext := range []string{".key", ".crt"} {
			if exists(nextCA(ca) + ext) {
				if err := os.Rename(filepath.Join(s.Dir, nextCA(ca)+ext), filepath.Join(s.Dir, ca+ext)); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, os.Remove(filepath.Join(s.Dir, rotationFile))
}

// finishPromotion ends a rotation whose new CAs were moving into place when its run stopped.
func (s *Store) finishPromotion() error {
	r, err := s.Rotation()
	if err != nil || r == nil || r.Step != stepPromote {
		return err
	}
	_, err = s.AdvanceRotation()
	return err
}

// Trust is what the hosts are given as a CA's certificate: the CA, and during its rotation the new one after it.
// A bundle, so never a signer's certificate (the controller-manager refuses more than one): see Rotation.Signing.
func (s *Store) Trust(ca string) ([]byte, error) {
	cur, err := s.ReadFile(ca + ".crt")
	if err != nil || cur == nil {
		return cur, err
	}
	next, err := s.ReadFile(nextCA(ca) + ".crt")
	if err != nil {
		return nil, err
	}
	return append(append([]byte{}, cur...), next...), nil
}
