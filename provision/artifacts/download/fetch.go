package download

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
)

// Source names where an expected digest came from.
type Source string

const (
	Published Source = "the published checksum file"
	Pin       Source = "the sha256 pin in the configuration"
	Lock      Source = "the lock file"
)

// ChecksumError is a downloaded file whose digest is not the one expected. Nothing of it was cached.
type ChecksumError struct {
	Artifact, URL    string
	Expected, Actual string
	Source           Source
	Where            string // the checksum file's URL or the lock file's path
	// Unpublished says the artifact's project publishes no checksum file (flannel, kube-router), so only a pin
	// vouches for a changed file: -upgrade has nothing to accept.
	Unpublished bool
}

func (e *ChecksumError) Error() string {
	msg := fmt.Sprintf("download: %s: %s has sha256 %s, but %s", e.Artifact, e.URL, e.Actual, e.Source)
	if e.Where != "" {
		msg += " " + e.Where
	}
	msg += fmt.Sprintf(" says %s; nothing was cached", e.Expected)
	switch {
	case e.Source == Lock && e.Unpublished:
		return msg + fmt.Sprintf(" (the file changed, upstream or on the mirror, since it was locked, and its project publishes no checksum: if you trust the new file, pin its sha256 in the artifacts block, sha256 = { %s = \"…\" }, from a source you trust)", e.Artifact)
	case e.Source == Lock:
		return msg + fmt.Sprintf(" (the file changed, upstream or on the mirror, since it was locked: if you trust the change, delete the artifact %q block from the lock file or fetch with -upgrade)", e.Artifact)
	case e.Source == Pin:
		return msg + " (if the new file is the one you want, change the pin)"
	}
	return msg + " (the download or the file on the server is damaged)"
}

// ErrNoChecksum is wrapped by the error for a file whose project publishes no checksum and which neither a pin
// nor the lock file vouches for: kforge installs no file it cannot check, and downloads none.
var ErrNoChecksum = errors.New("nothing to check it against")

// noChecksum is the error for a: unless a pin or its lock entry vouches for it, a file without a published
// checksum is not even downloaded.
func (f *fetcher) noChecksum(a Artifact) error {
	lock := "there is no lock file"
	if f.lock.path != "" {
		lock = "the lock file " + f.lock.path + " has no entry for it"
	}
	return fmt.Errorf("download: %s: %s: %w: its project publishes no checksum file, the configuration pins no sha256 for %q and %s;"+
		" pin the sha256 of this very file, taken from a source you trust, in the artifacts block: sha256 = { %s = \"<64 hex digits>\" }",
		a.Name, a.URL, ErrNoChecksum, a.Name, lock, a.Name)
}

// Fetch makes sure every file of the request is in the cache and verified, builds the set from them and returns its
// directory, which artifacts.Load reads. With the lock file and the cache holding every file it makes no request.
func Fetch(ctx context.Context, req Request) (string, error) {
	arts, err := Resolve(req)
	if err != nil {
		return "", err
	}
	if req.CacheDir == "" {
		return "", errors.New("download: no cache directory")
	}
	lock, err := readLock(req.LockFile)
	if err != nil {
		return "", err
	}
	f := &fetcher{req: req, lock: lock, client: req.Client}
	if f.client == nil {
		f.client = http.DefaultClient
	}
	sums := make([]string, len(arts))
	known := true
	for i, a := range arts {
		sums[i] = f.locked(a)
		known = known && sums[i] != ""
		// Refused before anything is downloaded.
		if a.SumsURL == "" && sums[i] == "" && req.SHA256[a.Name] == "" {
			return "", f.noChecksum(a)
		}
	}
	if dir := setDir(req.CacheDir, arts, sums); known && complete(dir) {
		return dir, nil
	}
	for i, a := range arts {
		if sums[i], err = f.ensure(ctx, a, sums[i]); err != nil {
			return "", err
		}
	}
	dir, err := buildSet(req.CacheDir, arts, sums)
	if err != nil {
		return "", err
	}
	for i, a := range arts {
		lock.record(a, sums[i])
	}
	return dir, lock.write()
}

type fetcher struct {
	req    Request
	lock   *lockFile
	client *http.Client
}

// locked is the digest the lock file holds for a. Upgrading ignores it, unless a's project publishes no checksum
// (then the lock is all that vouches for the file, and -upgrade would accept anything); a pin of another digest
// ignores it too, since writing a new pin is as deliberate as -upgrade: the download is then checked against the
// pin and recorded.
func (f *fetcher) locked(a Artifact) string {
	sum := f.lock.sum(a)
	if (f.req.Upgrade && a.SumsURL != "") || (f.req.SHA256[a.Name] != "" && f.req.SHA256[a.Name] != sum) {
		return ""
	}
	return sum
}

func (f *fetcher) blob(sum string) string { return filepath.Join(f.req.CacheDir, "sha256", sum) }

// ensure puts a's file in the cache unless it is there, and returns its digest.
func (f *fetcher) ensure(ctx context.Context, a Artifact, locked string) (string, error) {
	if locked != "" && exists(f.blob(locked)) {
		return locked, nil
	}
	published, err := f.published(ctx, a)
	if err != nil {
		return "", err
	}
	pin := f.req.SHA256[a.Name]
	if published == "" && pin == "" && locked == "" {
		return "", f.noChecksum(a) // Fetch refuses it first; this keeps an unchecked file out of the cache regardless
	}
	// Without a lock entry, a cached file whose digest every expectation names is the file.
	if want := cmp.Or(published, pin); locked == "" && (pin == "" || published == "" || pin == published) && exists(f.blob(want)) {
		return want, nil
	}
	return f.download(ctx, a, []ChecksumError{
		{Expected: published, Source: Published, Where: a.SumsURL},
		{Expected: pin, Source: Pin},
		{Expected: locked, Source: Lock, Where: f.lock.path, Unpublished: a.SumsURL == ""},
	})
}

// published reads the digest a's project publishes beside it; "" when it publishes none.
func (f *fetcher) published(ctx context.Context, a Artifact) (string, error) {
	if a.SumsURL == "" {
		return "", nil
	}
	resp, err := f.get(ctx, a.SumsURL)
	if err != nil {
		return "", fmt.Errorf("download: %s: checksum file: %w", a.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("download: %s: checksum file %s: %w", a.Name, a.SumsURL, err)
	}
	sum, err := parseSums(data, path.Base(a.Path))
	if err != nil {
		return "", fmt.Errorf("download: %s: checksum file %s: %w", a.Name, a.SumsURL, err)
	}
	return sum, nil
}

// download streams a's file into a temporary file in the cache and renames it to its digest only once every
// expectation holds, so the cache never holds a partial or unverified file.
func (f *fetcher) download(ctx context.Context, a Artifact, expect []ChecksumError) (string, error) {
	dir := filepath.Join(f.req.CacheDir, "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("download: cache: %w", err)
	}
	resp, err := f.get(ctx, a.URL)
	if err != nil {
		return "", fmt.Errorf("download: %s: %w", a.Name, err)
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return "", fmt.Errorf("download: cache: %w", err)
	}
	sum, err := f.receive(tmp, resp, a)
	if err == nil {
		err = check(a, sum, expect)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.blob(sum))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return sum, nil
}

// receive copies the body to tmp, closes it and returns the body's digest.
func (f *fetcher) receive(tmp *os.File, resp *http.Response, a Artifact) (string, error) {
	h := sha256.New()
	body := &progressReader{r: resp.Body}
	if f.req.Progress != nil {
		body.report = func(done int64) { f.req.Progress(a.Name, done, resp.ContentLength) }
		body.report(0)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		tmp.Close()
		return "", fmt.Errorf("download: %s: GET %s: %w", a.Name, a.URL, err)
	}
	if err = tmp.Chmod(0o444); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download: cache: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func check(a Artifact, actual string, expect []ChecksumError) error {
	for _, e := range expect {
		if e.Expected != "" && e.Expected != actual {
			e.Artifact, e.URL, e.Actual = a.Name, a.URL, actual
			return &e
		}
	}
	return nil
}

func (f *fetcher) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

// progressStep throttles progress reports: a terminal redraws a few times a second at most anyway.
const progressStep = 256 << 10

type progressReader struct {
	r              io.Reader
	report         func(done int64)
	done, reported int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.report != nil && p.done != p.reported && (p.done-p.reported >= progressStep || err == io.EOF) {
		p.reported = p.done
		p.report(p.done)
	}
	return n, err
}
