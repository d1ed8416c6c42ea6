package etcdbackend

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kforge/kforge/provision/backend"
	"github.com/kforge/kforge/provision/backend/etcdbackend/etcdtest"
	"github.com/kforge/kforge/provision/plan"
)

// TestStateRoundTrip: a saved state loads back the same in another Backend, and the stored key is the
// document Next made.
func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/roundtrip/"
	ctx := testContext(t)
	a := openBackend(t, config(srv, prefix))

	s, err := a.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Lineage != "" || s.Serial != 0 || s.Hosts == nil {
		t.Fatalf("empty state: %+v", s)
	}
	s.Record("cp1", plan.Managed{ID: "file:/etc/kforge/x", Kind: "file", Name: "/etc/kforge/x"})
	if err := a.SaveState(ctx, s); err != nil {
		t.Fatal(err)
	}
	if s.Serial != 1 || s.Lineage == "" {
		t.Errorf("after the first save: lineage %q, serial %d", s.Lineage, s.Serial)
	}
	// What Next makes of the state as loaded, with the lineage the save gave it, is what the key holds.
	loadedThen := *s
	loadedThen.Serial = 0
	want, err := loadedThen.Next()
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := srv.Get(t, prefix+"state"); !bytes.Equal(raw, want) {
		t.Errorf("stored document:\n%s\nwant Next's:\n%s", raw, want)
	}

	b := openBackend(t, config(srv, prefix))
	loaded, err := b.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Lineage != s.Lineage || loaded.Serial != 1 || len(loaded.Hosts["cp1"]) != 1 {
		t.Errorf("loaded: %+v", loaded)
	}
	// A second save from the same Backend compares against its own write.
	if err := a.SaveState(ctx, s); err != nil || s.Serial != 2 {
		t.Errorf("second save: serial %d, %v", s.Serial, err)
	}
}

// TestStateConflict: of two runs that loaded the same state, the second to save gets a ConflictError naming
// both serials, and the stored document stays the first one's, byte for byte.
func TestStateConflict(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/conflict/"
	ctx := testContext(t)

	first := openBackend(t, config(srv, prefix))
	s, _ := first.LoadState(ctx)
	if err := first.SaveState(ctx, s); err != nil { // serial 1
		t.Fatal(err)
	}

	a, b := openBackend(t, config(srv, prefix)), openBackend(t, config(srv, prefix))
	sa, err := a.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SaveState(ctx, sa); err != nil || sa.Serial != 2 {
		t.Fatalf("A's save: serial %d, %v", sa.Serial, err)
	}
	saved, _ := srv.Get(t, prefix+"state")

	sb.Record("w1", plan.Managed{ID: "file:/etc/b", Kind: "file", Name: "/etc/b"})
	err = b.SaveState(ctx, sb)
	var conflict *backend.ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("B's save: %v, want a ConflictError", err)
	}
	t.Log(err)
	if conflict.Serial != 2 || conflict.HaveSerial != 1 || !strings.Contains(err.Error(), "serial 2") ||
		!strings.Contains(err.Error(), "loaded serial 1") || !strings.Contains(err.Error(), prefix) {
		t.Errorf("conflict: %+v: %v", conflict, err)
	}
	if sb.Serial != 1 {
		t.Errorf("B's state moved to serial %d", sb.Serial)
	}
	if now, _ := srv.Get(t, prefix+"state"); !bytes.Equal(now, saved) {
		t.Errorf("the stored state changed:\n%s\nwas A's:\n%s", now, saved)
	}

	// A state of another lineage, loaded elsewhere, is refused even by a Backend whose revision is current.
	other := *sa
	other.Lineage = "0123456789abcdef0123456789abcdef"
	if err := a.SaveState(ctx, &other); !errors.As(err, &conflict) || conflict.Lineage != sa.Lineage {
		t.Errorf("saving another lineage's state: %v", err)
	}
}

// TestFirstSaves: two runs that both found no state cannot both start one: the second gets a conflict.
func TestFirstSaves(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/first/"
	ctx := testContext(t)
	a, b := openBackend(t, config(srv, prefix)), openBackend(t, config(srv, prefix))
	sa, _ := a.LoadState(ctx)
	sb, _ := b.LoadState(ctx)

	errs := make(chan error, 2)
	go func() { errs <- a.SaveState(ctx, sa) }()
	go func() { errs <- b.SaveState(ctx, sb) }()
	var won, lost int
	for range 2 {
		err := <-errs
		var conflict *backend.ConflictError
		switch {
		case err == nil:
			won++
		case errors.As(err, &conflict) && conflict.HaveLineage == "" && conflict.Lineage != "" && conflict.Serial == 1:
			lost++
			t.Log(err)
		default:
			t.Errorf("save: %v", err)
		}
	}
	if won != 1 || lost != 1 {
		t.Errorf("%d saves won, %d lost a conflict; want one each", won, lost)
	}
}

// TestStateDocument: the document moves byte for byte, and a put compares against what was read.
func TestStateDocument(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	const prefix = "/kforge/document/"
	ctx := testContext(t)
	a := openBackend(t, config(srv, prefix))
	doc, err := a.StateDocument(ctx)
	if err != nil || doc != nil {
		t.Fatalf("no state: %q, %v", doc, err)
	}
	want := []byte("{\"version\": 1, \"lineage\": \"feed\", \"serial\": 7, \"hosts\": {}}\n")
	if err := a.PutStateDocument(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.Get(t, prefix+"state"); !bytes.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
	if err := a.PutStateDocument(ctx, []byte("{}")); err == nil {
		t.Error("a document that is no state was stored")
	}

	b := openBackend(t, config(srv, prefix))
	if got, err := b.StateDocument(ctx); err != nil || !bytes.Equal(got, want) {
		t.Errorf("read back %q, %v", got, err)
	}
	s, _ := a.LoadState(ctx)
	if err := a.SaveState(ctx, s); err != nil {
		t.Fatal(err)
	}
	var conflict *backend.ConflictError
	if err := b.PutStateDocument(ctx, want); !errors.As(err, &conflict) || conflict.Serial != 8 || conflict.HaveSerial != 7 {
		t.Errorf("a put over a newer state: %v", err)
	}
}
