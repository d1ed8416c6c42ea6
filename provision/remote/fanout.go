package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ForEach runs fn for every host with at most limit running at once (limit < 1 means 1). It waits for all
// that started; hosts not yet started when ctx ends get ctx's error. The result joins one *HostError per
// failed host, in the order of hosts, so callers can tell hosts apart with errors.As.
func ForEach[T any](ctx context.Context, hosts []T, limit int, name func(T) string, step string, fn func(context.Context, T) error) error {
	if limit < 1 {
		limit = 1
	}
	errs := make([]error, len(hosts))
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, h := range hosts {
		acquired := false
		select {
		case slots <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		// select picks at random when a slot frees as ctx ends: check again so no host starts after the end.
		if err := ctx.Err(); err != nil {
			if acquired {
				<-slots
			}
			errs[i] = asHostError(name(h), step, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := fn(ctx, h); err != nil {
				errs[i] = asHostError(name(h), step, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// asHostError keeps an error that already names its host and step, and wraps any other.
func asHostError(host, step string, err error) error {
	var he *HostError
	if errors.As(err, &he) && he.Host == host {
		return err
	}
	return &HostError{Host: host, Step: step, Err: err}
}

// HostErrors lists the per-host errors inside an error returned by ForEach.
func HostErrors(err error) []*HostError {
	var out []*HostError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if he, ok := e.(*HostError); ok {
			out = append(out, he)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// Poll runs cmd until it succeeds, every interval, for at most timeout (and never past ctx); the error says how
// long it tried, with the last failure. For health checks after a start: a service takes a moment to answer.
func Poll(ctx context.Context, r Runner, cmd Command, timeout, interval time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := r.Run(ctx, cmd)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}
