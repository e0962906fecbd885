package fleet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"go.uber.org/zap"
)

// TicketsKey holds the fleet's session ticket keys, as JSON.
const TicketsKey = "swarmgate/session-ticket-keys"

// ticketsLock guards the rotation across control plane replicas.
const ticketsLock = "swarmgate/session-ticket-keys-rotation"

// Defaults of TicketOptions.
const (
	DefaultTicketRotation = 12 * time.Hour
	DefaultTicketLead     = 10 * time.Minute
	DefaultTicketCheck    = time.Minute
)

// TicketKey is a session ticket key of the fleet: edges seal new tickets
// with the newest key whose From has passed, and open tickets with any key
// until its Until.
type TicketKey struct {
	Secret []byte    `json:"secret"` // 32 bytes
	From   time.Time `json:"from"`
	Until  time.Time `json:"until"`
}

// TicketOptions configure RotateTickets. Every zero value is a working
// default.
type TicketOptions struct {
	// Rotation is how long one key seals new tickets. If zero,
	// DefaultTicketRotation.
	Rotation time.Duration
	// Lifetime is how long after its From a key opens tickets; then it is
	// removed. If zero, three Rotations: a ticket resumes for at least two.
	Lifetime time.Duration
	// Lead is how long before edges seal with a new key it is published,
	// so that every edge holds it first (edges fetch the keys every
	// minute). If zero, DefaultTicketLead.
	Lead time.Duration
	// Check is how often the keys are looked at. If zero,
	// DefaultTicketCheck.
	Check time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Logger receives rotations and failures (never a key). If nil,
	// nothing is logged.
	Logger *zap.Logger
}

func (o *TicketOptions) defaults() {
	if o.Rotation <= 0 {
		o.Rotation = DefaultTicketRotation
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 3 * o.Rotation
	}
	if o.Lead <= 0 {
		o.Lead = DefaultTicketLead
	}
	if o.Check <= 0 {
		o.Check = DefaultTicketCheck
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// RotateTickets keeps the fleet's session ticket keys in s until ctx is
// done: a first key at once, a new one published Lead before the newest has
// sealed for Rotation, and keys past their Until removed. Every control
// plane replica runs it; a lock makes one of them rotate.
func RotateTickets(ctx context.Context, s Store, o TicketOptions) {
	o.defaults()
	t := time.NewTicker(o.Check)
	defer t.Stop()
	for {
		if err := RotateTicketsOnce(ctx, s, o); err != nil && ctx.Err() == nil {
			o.Logger.Warn("session ticket keys not rotated", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RotateTicketsOnce does one pass of RotateTickets.
func RotateTicketsOnce(ctx context.Context, s Store, o TicketOptions) error {
	o.defaults()
	tok, ok, err := s.TryLock(ctx, ticketsLock, time.Minute)
	if err != nil || !ok {
		return err // another replica is at it
	}
	defer s.Unlock(context.WithoutCancel(ctx), ticketsLock, tok)
	keys, err := loadTickets(ctx, s.Load)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	now := o.Now()
	var next []TicketKey
	var newest time.Time
	for _, k := range keys {
		if now.Before(k.Until) {
			next = append(next, k)
			if k.From.After(newest) {
				newest = k.From
			}
		}
	}
	var from time.Time
	switch {
	case len(next) == 0:
		from = now // nothing to be in step with: seal at once
	case !now.Add(o.Lead).Before(newest.Add(o.Rotation)):
		from = now.Add(o.Lead)
	}
	if !from.IsZero() {
		k := TicketKey{Secret: make([]byte, 32), From: from, Until: from.Add(o.Lifetime)}
		if _, err := io.ReadFull(rand.Reader, k.Secret); err != nil {
			return fmt.Errorf("fleet: session ticket key: %w", err)
		}
		next = append(next, k)
	}
	if len(next) == len(keys) && from.IsZero() {
		return nil
	}
	b, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("fleet: session ticket keys: %w", err)
	}
	if err := s.Store(ctx, TicketsKey, b); err != nil {
		return err
	}
	o.Logger.Info("session ticket keys rotated", zap.Int("keys", len(next)), zap.Bool("added", !from.IsZero()))
	return nil
}

// TicketKeys returns the fleet's session ticket keys.
func (c *Client) TicketKeys(ctx context.Context) ([]TicketKey, error) {
	return loadTickets(ctx, c.Load)
}

func loadTickets(ctx context.Context, load func(context.Context, string) ([]byte, error)) ([]TicketKey, error) {
	b, err := load(ctx, TicketsKey)
	if err != nil {
		return nil, err
	}
	var keys []TicketKey
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("fleet: session ticket keys: %w", err)
	}
	for _, k := range keys {
		if len(k.Secret) != 32 || !k.From.Before(k.Until) {
			return nil, errors.New("fleet: session ticket keys: a key without 32 bytes or with Until before From")
		}
	}
	return keys, nil
}
