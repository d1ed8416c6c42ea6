package etcdbackend

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
)

// A file's value is an envelope, as JSON:
//
//	{"version":1,"mode":"0600","cipher":"AES-256-GCM","nonce":"<base64, 12 bytes>","data":"<base64, sealed content>"}
//	{"version":1,"mode":"0644","cipher":"none","data":"<base64, content>"}
//
// Sealed content is the file's content under AES-256-GCM with the backend's key and a fresh random nonce per
// write. Its additional data binds it to its place: "kforge-file/1", the relative path and the mode, NUL
// separated; so a value copied to another key, or given another mode, no longer opens.
//
// A plain envelope is what the user chose by giving no key. With a key, a plain value is refused (Files): the
// seal is what says a value was written by someone holding the key.
type envelope struct {
	Version int    `json:"version"`
	Mode    string `json:"mode"`
	Cipher  string `json:"cipher"`
	Nonce   []byte `json:"nonce,omitempty"`
	Data    []byte `json:"data"`
}

const (
	envelopeVersion = 1
	cipherAESGCM    = "AES-256-GCM"
	cipherNone      = "none"
)

// seal makes the value of the file at rel. A nil key stores it plain.
func seal(key []byte, rel string, mode fs.FileMode, content []byte) ([]byte, error) {
	e := envelope{Version: envelopeVersion, Mode: formatMode(mode), Cipher: cipherNone, Data: content}
	if key != nil {
		aead, err := newAEAD(key)
		if err != nil {
			return nil, err
		}
		e.Cipher = cipherAESGCM
		e.Nonce = make([]byte, aead.NonceSize())
		if _, err := rand.Read(e.Nonce); err != nil {
			return nil, err
		}
		e.Data = aead.Seal(nil, e.Nonce, content, additionalData(rel, e.Mode))
	}
	return json.Marshal(e)
}

// open reads the value of the file at rel: its content, its mode, and whether it was stored plain.
func open(key []byte, rel string, value []byte) (content []byte, mode fs.FileMode, plain bool, err error) {
	var e envelope
	if err := json.Unmarshal(value, &e); err != nil {
		return nil, 0, false, fmt.Errorf("is not a kforge file's value: %w", err)
	}
	if e.Version != envelopeVersion {
		return nil, 0, false, fmt.Errorf("has format %d; this kforge reads %d", e.Version, envelopeVersion)
	}
	mode, err = parseMode(e.Mode)
	if err != nil {
		return nil, 0, false, err
	}
	switch e.Cipher {
	case cipherNone:
		return e.Data, mode, true, nil
	case cipherAESGCM:
		if key == nil {
			return nil, 0, false, errors.New("is encrypted: give the backend's encryption key")
		}
		aead, err := newAEAD(key)
		if err != nil {
			return nil, 0, false, err
		}
		if len(e.Nonce) != aead.NonceSize() {
			return nil, 0, false, fmt.Errorf("has a nonce of %d bytes, not %d", len(e.Nonce), aead.NonceSize())
		}
		content, err := aead.Open(nil, e.Nonce, e.Data, additionalData(rel, e.Mode))
		if err != nil {
			return nil, 0, false, errors.New("cannot be decrypted with the given key (another key sealed it, or the value was altered or moved from another key)")
		}
		return content, mode, false, nil
	}
	return nil, 0, false, fmt.Errorf("has cipher %q, which this kforge does not know", e.Cipher)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func additionalData(rel, mode string) []byte {
	return []byte("kforge-file/1\x00" + rel + "\x00" + mode)
}

func formatMode(mode fs.FileMode) string { return fmt.Sprintf("%04o", uint32(mode.Perm())) }

func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("has mode %q, not permission bits in octal", s)
	}
	return fs.FileMode(n), nil
}
