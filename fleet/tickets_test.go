package fleet

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestRotateTickets walks two days in Check steps: one key at first, a new
// one published Lead ahead of each Rotation, at most Lifetime/Rotation+1
// keys held, each removed at its Until, and exactly one key sealing at any
// moment.
func TestRotateTickets(t *testing.T) {
	clock := newFakeClock()
	s := &Memory{Now: clock.Now}
	o := TicketOptions{Rotation: 12 * time.Hour, Lead: 10 * time.Minute, Check: time.Minute, Now: clock.Now}
	ctx := context.Background()
	if err := RotateTicketsOnce(ctx, s, o); err != nil {
		t.Fatal(err)
	}
	first, err := loadTickets(ctx, s.Load)
	if err != nil || len(first) != 1 || !first[0].From.Equal(clock.Now()) || !first[0].Until.Equal(clock.Now().Add(36*time.Hour)) {
		t.Fatalf("first keys: %+v, %v", first, err)
	}
	secrets := map[string]bool{}
	for step := time.Duration(0); step < 48*time.Hour; step += time.Minute {
		clock.Add(time.Minute)
		if err := RotateTicketsOnce(ctx, s, o); err != nil {
			t.Fatal(err)
		}
		keys, err := loadTickets(ctx, s.Load)
		if err != nil {
			t.Fatal(err)
		}
		now, sealing := clock.Now(), 0
		for _, k := range keys {
			secrets[string(k.Secret)] = true
			if !now.Before(k.Until) {
				t.Fatalf("at +%v a retired key is kept", step)
			}
			if !now.Before(k.From) {
				sealing++
			}
		}
		if sealing == 0 || len(keys) > 4 {
			t.Fatalf("at +%v: %d keys, %d past their From", step, len(keys), sealing)
		}
	}
	// 48h / 12h rotations, plus the first key.
	if len(secrets) != 5 {
		t.Fatalf("%d keys over two days, want 5", len(secrets))
	}
	// Another replica holding the lock: no rotation, no error.
	clock.Add(13 * time.Hour)
	tok, _, _ := s.TryLock(ctx, ticketsLock, time.Minute)
	before, _ := s.Load(ctx, TicketsKey)
	if err := RotateTicketsOnce(ctx, s, o); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Load(ctx, TicketsKey); !bytes.Equal(before, after) {
		t.Fatal("rotated while another replica held the lock")
	}
	s.Unlock(ctx, ticketsLock, tok)
}

func TestClientTicketKeys(t *testing.T) {
	mem := &Memory{}
	_, c := serve(t, mem, HandlerOptions{})
	ctx := context.Background()
	if err := RotateTicketsOnce(ctx, mem, TicketOptions{}); err != nil {
		t.Fatal(err)
	}
	keys, err := c.TicketKeys(ctx)
	if err != nil || len(keys) != 1 || len(keys[0].Secret) != 32 {
		t.Fatalf("TicketKeys = %d keys, %v", len(keys), err)
	}
	mem.Store(ctx, TicketsKey, []byte(`[{"secret":"c2hvcnQ=","from":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z"}]`))
	if _, err := c.TicketKeys(ctx); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}
