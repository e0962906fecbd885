// Package fleet is the state the edges of a cluster share: a small
// key/value store with expiring locks (ACME certificates, challenges, session
// ticket keys) that only the control plane writes, into Docker configs in
// Swarm's Raft store. Edges read and write it through the control plane's
// listener (Handler, Client) and never hold the key that encrypts it.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limits of keys and values, checked by every Store and by the Handler.
const (
	// MaxKeyLen bounds a key in bytes.
	MaxKeyLen = 512
	// MaxValueLen bounds a value: a certificate chain, its key or an ACME
	// account is a few KiB; a Docker config holds at most 500 KiB.
	MaxValueLen = 256 << 10
)

// ErrLockLost is returned by Refresh and Unlock when the lock is no longer
// held under the token: it expired and another holder took it.
var ErrLockLost = errors.New("fleet: lock not held")

// KeyInfo describes a key, as certmagic.KeyInfo does.
type KeyInfo struct {
	Key        string    `json:"key"`
	Modified   time.Time `json:"modified"`
	Size       int64     `json:"size"`
	IsTerminal bool      `json:"terminal"` // a value, not a prefix of other keys
}

// Store is the shared state: keys with "/"-separated components (no leading
// or trailing "/") holding values, and named locks that expire unless their
// holder refreshes them. Load, Stat and List return an error wrapping
// fs.ErrNotExist for a missing key; Delete of a missing key is not an error,
// and Delete of a prefix deletes every key under it. Implementations are safe
// for concurrent use. Docker (production) and Memory (tests) implement it;
// an edge's view of it is a Client.
type Store interface {
	Store(ctx context.Context, key string, value []byte) error
	Load(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	Exists(ctx context.Context, key string) bool
	List(ctx context.Context, prefix string, recursive bool) ([]string, error)
	Stat(ctx context.Context, key string) (KeyInfo, error)
	// TryLock takes the lock name for ttl if nobody holds it or its holder
	// let it expire, and returns the token that refreshes and releases it;
	// ok is false when another holder has it.
	TryLock(ctx context.Context, name string, ttl time.Duration) (token string, ok bool, err error)
	// Refresh extends a held lock to ttl from now.
	Refresh(ctx context.Context, name, token string, ttl time.Duration) error
	// Unlock releases a held lock. It is ErrLockLost if the lock expired and
	// was taken by another holder meanwhile.
	Unlock(ctx context.Context, name, token string) error
}

// CheckKey reports whether key is a valid key (or lock name): non-empty, at
// most MaxKeyLen bytes, printable ASCII, no empty, "." or ".." component.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("fleet: key %q: empty or longer than %d bytes", trim(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return fmt.Errorf("fleet: key %q: byte %#x not allowed", trim(key), c)
		}
	}
	for _, c := range strings.Split(key, "/") {
		if c == "" || c == "." || c == ".." {
			return fmt.Errorf("fleet: key %q: empty, . or .. component", trim(key))
		}
	}
	return nil
}

// checkPrefix accepts "" (every key) and any valid key.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return CheckKey(prefix)
}

func trim(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func notExist(key string) error {
	return fmt.Errorf("fleet: %q: %w", trim(key), fs.ErrNotExist)
}

// under reports whether key lies below prefix, component-wise ("a" is a
// prefix of "a/b", not of "ab"); every key lies below "".
func under(key, prefix string) bool {
	return prefix == "" || strings.HasPrefix(key, prefix+"/")
}

// listKeys answers List from every key there is: the keys directly below
// prefix (a deeper key yields its first component below prefix, as a
// directory listing would), or with recursive every key below it.
func listKeys(all []string, prefix string, recursive bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range all {
		if !under(k, prefix) {
			continue
		}
		if !recursive {
			rest := k
			if prefix != "" {
				rest = k[len(prefix)+1:]
			}
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				k = k[:len(k)-len(rest)+i]
			}
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// list answers List from keys, which returns every key there is.
func list(keys func() ([]string, error), prefix string, recursive bool) ([]string, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	all, err := keys()
	if err != nil {
		return nil, err
	}
	out := listKeys(all, prefix, recursive)
	if len(out) == 0 && prefix != "" {
		return nil, notExist(prefix)
	}
	return out, nil
}

// statKeys answers Stat of a key that holds no value: a prefix of others.
func statKeys(all []string, key string) (KeyInfo, bool) {
	for _, k := range all {
		if under(k, key) {
			return KeyInfo{Key: key}, true
		}
	}
	return KeyInfo{}, false
}

// Memory is a Store in memory, for tests and for a single control plane
// replica that can lose its state. The zero value is empty and ready.
type Memory struct {
	// Now is the clock of lock expiry. If nil, time.Now.
	Now func() time.Time

	mu     sync.Mutex // guards values and locks
	values map[string]memValue
	locks  map[string]memLock
	tokens int
}

type memValue struct {
	data     []byte
	modified time.Time
}

type memLock struct {
	token   string
	expires time.Time
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Store sets key to a copy of value.
func (m *Memory) Store(_ context.Context, key string, value []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("fleet: %q: value of %d bytes over the limit of %d", trim(key), len(value), MaxValueLen)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values = map[string]memValue{}
	}
	m.values[key] = memValue{data: slices.Clone(value), modified: m.now()}
	return nil
}

// Load returns a copy of key's value.
func (m *Memory) Load(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[key]
	if !ok {
		return nil, notExist(key)
	}
	return slices.Clone(v.data), nil
}

// Delete removes key and every key below it.
func (m *Memory) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.values {
		if k == key || under(k, key) {
			delete(m.values, k)
		}
	}
	return nil
}

// Exists reports whether key holds a value or is a prefix of keys that do.
func (m *Memory) Exists(ctx context.Context, key string) bool {
	_, err := m.Stat(ctx, key)
	return err == nil
}

// List returns the keys below prefix.
func (m *Memory) List(_ context.Context, prefix string, recursive bool) ([]string, error) {
	return list(func() ([]string, error) { return m.keys(), nil }, prefix, recursive)
}

// Stat describes key.
func (m *Memory) Stat(_ context.Context, key string) (KeyInfo, error) {
	m.mu.Lock()
	v, ok := m.values[key]
	m.mu.Unlock()
	if ok {
		return KeyInfo{Key: key, Modified: v.modified, Size: int64(len(v.data)), IsTerminal: true}, nil
	}
	if ki, ok := statKeys(m.keys(), key); ok {
		return ki, nil
	}
	return KeyInfo{}, notExist(key)
}

func (m *Memory) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.values))
	for k := range m.values {
		out = append(out, k)
	}
	return out
}

// TryLock takes name if it is free or expired.
func (m *Memory) TryLock(_ context.Context, name string, ttl time.Duration) (string, bool, error) {
	if err := CheckKey(name); err != nil {
		return "", false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if l, ok := m.locks[name]; ok && now.Before(l.expires) {
		return "", false, nil
	}
	if m.locks == nil {
		m.locks = map[string]memLock{}
	}
	m.tokens++
	tok := fmt.Sprintf("m%d", m.tokens)
	m.locks[name] = memLock{token: tok, expires: now.Add(ttl)}
	return tok, true, nil
}

// Refresh extends name's lock.
func (m *Memory) Refresh(_ context.Context, name, token string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.locks[name]; !ok || l.token != token {
		return ErrLockLost
	}
	m.locks[name] = memLock{token: token, expires: m.now().Add(ttl)}
	return nil
}

// Unlock releases name's lock.
func (m *Memory) Unlock(_ context.Context, name, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.locks[name]; !ok || l.token != token {
		return ErrLockLost
	}
	delete(m.locks, name)
	return nil
}

var _ Store = (*Memory)(nil)
