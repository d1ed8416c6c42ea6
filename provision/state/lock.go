package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kforge/kforge/internal/jsonerr"
)

// LockInfo says who holds the lock.
type LockInfo struct {
	Operation string    `json:"operation"`
	PID       int       `json:"pid"`
	Hostname  string    `json:"hostname"`
	Since     time.Time `json:"since"`
}

func (i LockInfo) String() string {
	if i.PID == 0 {
		return "a holder the lock file does not name"
	}
	return fmt.Sprintf("kforge %s, PID %d on %s, since %s", i.Operation, i.PID, i.Hostname, i.Since.Format(time.RFC3339))
}

// Lock is held while an operation may change hosts or the state.
type Lock struct {
	f    *os.File
	path string
	// Previous is the holder recorded by a run that ended without unlocking (killed), when there was one.
	Previous *LockInfo
}

const lockName = "lock.json"

// LockedError: another kforge holds the lock.
type LockedError struct {
	Where  string // the lock file, or the backend that holds the lock
	Holder LockInfo
	Waited time.Duration // how long this run waited for it (--lock-timeout)
}

func (e *LockedError) Error() string {
	waited := ""
	if e.Waited > 0 {
		waited = fmt.Sprintf(" after waiting %s", e.Waited.Round(time.Second))
	}
	return fmt.Sprintf("the state is locked by %s (%s)%s; wait for it (--lock-timeout), or if that run is gone run kforge force-unlock",
		e.Holder, e.Where, waited)
}

// Acquire takes the lock in dir for operation. The lock is an flock on dir/lock.json, so it ends with its
// holder even if the holder is killed; the file keeps the holder's details, which is how a later run can tell
// that an earlier one did not finish.
func Acquire(dir, operation string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		info, _ := readInfo(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Where: path, Holder: info}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &Lock{f: f, path: path}
	if prev, err := readInfo(path); err == nil && prev.PID != 0 {
		l.Previous = &prev
	}
	host, _ := os.Hostname()
	data, _ := json.Marshal(LockInfo{Operation: operation, PID: os.Getpid(), Hostname: host, Since: time.Now().UTC()})
	if err := f.Truncate(0); err != nil {
		l.Release()
		return nil, err
	}
	if _, err := f.WriteAt(append(data, '\n'), 0); err != nil {
		l.Release()
		return nil, err
	}
	return l, f.Sync()
}

// Release clears the holder's details and unlocks.
func (l *Lock) Release() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Truncate(0)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// ForceUnlock removes the lock file, for a holder that is gone but whose lock is still held (a stuck process
// on a shared file system). It returns what the file said: nothing (a zero PID) when it was damaged, which
// is no reason to keep it.
func ForceUnlock(dir string) (LockInfo, error) {
	path := filepath.Join(dir, lockName)
	info, err := readInfo(path)
	if errors.Is(err, os.ErrNotExist) {
		return info, fmt.Errorf("there is no lock in %s", dir)
	}
	return info, os.Remove(path)
}

// Holder reads who holds (or last held without releasing) the lock; a zero PID means nobody.
func Holder(dir string) (LockInfo, error) { return readInfo(filepath.Join(dir, lockName)) }

// readInfo reads the lock file. An empty file is a released lock. A damaged one gives an error that says so
// and a zero LockInfo, never a half-read one: its PID would be signalled.
func readInfo(path string) (LockInfo, error) {
	var info LockInfo
	data, err := os.ReadFile(path)
	if err != nil {
		return LockInfo{}, err
	}
	if len(data) == 0 {
		return LockInfo{}, nil
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return LockInfo{}, fmt.Errorf("lock file %s is damaged: %w", path, jsonerr.Explain(data, err))
	}
	if info.PID <= 0 {
		return LockInfo{}, fmt.Errorf("lock file %s is damaged: %d is not a process ID", path, info.PID)
	}
	return info, nil
}
