package etcdbackend

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestEnvelope: a sealed value opens only with its key, under its name, with its mode, and unaltered.
func TestEnvelope(t *testing.T) {
	key := newKey(t)
	content := []byte("-----BEGIN PRIVATE KEY-----\n")
	value, err := seal(key, "pki/ca.key", 0o600, content)
	if err != nil {
		t.Fatal(err)
	}
	got, mode, plain, err := open(key, "pki/ca.key", value)
	if err != nil || !bytes.Equal(got, content) || mode != 0o600 || plain {
		t.Fatalf("open: %q %v %v %v", got, mode, plain, err)
	}
	again, _ := seal(key, "pki/ca.key", 0o600, content)
	if bytes.Equal(again, value) {
		t.Error("two seals of the same file are the same: the nonce is not fresh")
	}

	var e envelope
	if err := json.Unmarshal(value, &e); err != nil {
		t.Fatal(err)
	}
	widened := e
	widened.Mode = "0644"
	flipped := e
	flipped.Data = bytes.Clone(e.Data)
	flipped.Data[0] ^= 1
	for name, tc := range map[string]struct {
		key   []byte
		rel   string
		value envelope
		says  string
	}{
		"another name": {key, "pki/other.key", e, "cannot be decrypted"},
		"another mode": {key, "pki/ca.key", widened, "cannot be decrypted"},
		"altered":      {key, "pki/ca.key", flipped, "cannot be decrypted"},
		"another key":  {newKey(t), "pki/ca.key", e, "cannot be decrypted with the given key"},
		"no key":       {nil, "pki/ca.key", e, "is encrypted: give the backend's encryption key"},
	} {
		v, _ := json.Marshal(tc.value)
		if _, _, _, err := open(tc.key, tc.rel, v); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %q", name, err, tc.says)
		}
	}

	plainValue, _ := seal(nil, "known_hosts", 0o644, []byte("h"))
	if got, mode, plain, err := open(key, "known_hosts", plainValue); err != nil || string(got) != "h" || mode != 0o644 || !plain {
		t.Errorf("a plain value read with a key: %q %v %v %v", got, mode, plain, err)
	}
	if _, _, _, err := open(key, "x", []byte(`{"version":1,"mode":"4755","cipher":"none","data":""}`)); err == nil {
		t.Error("a setuid mode was accepted")
	}
}
