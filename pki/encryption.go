package pki

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// EncryptionKey is one key of the Secrets encryption config.
type EncryptionKey struct {
	Provider string `json:"provider"` // secretbox or aescbc
	Name     string `json:"name"`
	Secret   string `json:"secret"` // base64 of 32 random bytes
}

const (
	encryptionKeysFile   = "encryption-keys.json"
	EncryptionConfigFile = "encryption-config.yaml"
)

// EnsureEncryptionConfig makes sure the encryption-at-rest config for Secrets uses provider ("none" writes
// Secrets in the clear) and returns it. Keys are never thrown away: a new provider's key goes first, older keys
// stay after it so that Secrets written with them can still be read.
func EnsureEncryptionConfig(s *Store, provider string, now time.Time) ([]byte, error) {
	var keys []EncryptionKey
	if data, err := s.ReadFile(encryptionKeysFile); err != nil {
		return nil, err
	} else if data != nil {
		if err := json.Unmarshal(data, &keys); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", s.Dir, encryptionKeysFile, err)
		}
	}
	if provider != "none" && (len(keys) == 0 || keys[0].Provider != provider) {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		key := EncryptionKey{Provider: provider, Name: provider + "-" + now.UTC().Format("20060102150405"),
			Secret: base64.StdEncoding.EncodeToString(secret)}
		keys = append([]EncryptionKey{key}, keys...)
		data, _ := json.MarshalIndent(keys, "", "  ")
		if err := s.WriteFile(encryptionKeysFile, append(data, '\n'), 0o600); err != nil {
			return nil, err
		}
	}
	config := renderEncryptionConfig(keys, provider == "none")
	if old, _ := s.ReadFile(EncryptionConfigFile); string(old) != string(config) {
		if err := s.WriteFile(EncryptionConfigFile, config, 0o600); err != nil {
			return nil, err
		}
	}
	return config, nil
}

// renderEncryptionConfig lists the providers in order: the first one encrypts, all of them decrypt.
func renderEncryptionConfig(keys []EncryptionKey, identityFirst bool) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n")
	if identityFirst {
		b.WriteString("      - identity: {}\n")
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "      - %s:\n          keys:\n            - name: %s\n              secret: %s\n", k.Provider, k.Name, k.Secret)
	}
	if !identityFirst {
		b.WriteString("      - identity: {}\n")
	}
	return []byte(b.String())
}
