package fleet

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// DefaultPrefix names the Docker configs of the state.
const DefaultPrefix = "swarmgate-state-"

// Labels of the state's Docker configs.
const (
	labelNS      = "swarmgate.state"         // the Prefix: which state an object belongs to
	labelKind    = "swarmgate.state.kind"    // "value" or "lock"
	labelID      = "swarmgate.state.id"      // hash of the key or lock name
	labelSeq     = "swarmgate.state.seq"     // a value's write time (Unix ns): the newest wins
	labelToken   = "swarmgate.state.token"   // a lock's holder
	labelExpires = "swarmgate.state.expires" // a lock's expiry (Unix ns)
)

// DockerOptions configure a Docker store. Client and Key are required.
type DockerOptions struct {
	// Client is a manager's Docker API (the control plane's own client,
	// never the socket-proxy's read-only surface).
	Client *client.Client
	// Key is the AES-256-GCM key the values are sealed with (see LoadKey).
	Key []byte
	// Prefix starts the name of every config the store creates and is the
	// value of its swarmgate.state label, which every listing filters on.
	// At most 22 bytes (a config name has at most 64). If empty,
	// DefaultPrefix.
	Prefix string
	// Now is the clock of writes and lock expiry. If nil, time.Now.
	Now func() time.Time
}

// Docker is the Store in Swarm's Raft: each value is a Docker config named
// Prefix+"v-"+hash(key)+"-"+seq whose data is the key and value sealed with
// AES-256-GCM. Configs are immutable, so a Store creates a new config and
// removes the older ones of the key; a read takes the newest. A lock is a
// config named Prefix+"l-"+hash(name): config names are unique in the
// cluster, so its creation is the test-and-set every control plane replica
// agrees on, and its labels hold the holder's token and the expiry after
// which another holder removes it and takes over.
type Docker struct {
	cli    *client.Client
	aead   cipher.AEAD
	prefix string
	now    func() time.Time

	mu      sync.Mutex // guards opened and lastSeq
	opened  map[string]opened
	lastSeq int64
}

// opened is a config's decrypted content, cached by config ID: a config's
// data never changes.
type opened struct {
	key   string
	value []byte
}

// LoadKey reads the state's encryption key from file (a Docker secret):
// any content of at least 32 bytes, such as `openssl rand -base64 32`; the
// AES-256 key is its SHA-256.
func LoadKey(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("fleet: state key: %w", err)
	}
	if len(b) < 32 {
		return nil, fmt.Errorf("fleet: state key %s: %d bytes, want at least 32 random bytes", file, len(b))
	}
	k := sha256.Sum256(b)
	return k[:], nil
}

// NewDocker returns the Docker store of o.
func NewDocker(o DockerOptions) (*Docker, error) {
	if o.Client == nil {
		return nil, errors.New("fleet: docker: no client")
	}
	if len(o.Key) != 32 {
		return nil, fmt.Errorf("fleet: docker: key of %d bytes, want 32", len(o.Key))
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if len(o.Prefix) > 22 {
		return nil, fmt.Errorf("fleet: docker: prefix %q longer than 22 bytes", o.Prefix)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	block, err := aes.NewCipher(o.Key)
	if err != nil {
		return nil, fmt.Errorf("fleet: docker: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("fleet: docker: %w", err)
	}
	return &Docker{cli: o.Client, aead: aead, prefix: o.Prefix, now: o.Now, opened: map[string]opened{}}, nil
}

// hashOf names a key or lock in config names and labels: 80 bits of its
// SHA-256, so that any key fits a config name.
func hashOf(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:10])
}

// seal encrypts key and value, the prefix as additional data: a config
// copied from another state does not open.
func (d *Docker) seal(key string, value []byte) ([]byte, error) {
	plain := make([]byte, 0, len(key)+1+len(value))
	plain = append(append(append(plain, key...), 0), value...)
	out := make([]byte, d.aead.NonceSize(), d.aead.NonceSize()+len(plain)+d.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, out); err != nil {
		return nil, fmt.Errorf("fleet: nonce: %w", err)
	}
	return d.aead.Seal(out, out, plain, []byte(d.prefix)), nil
}

// open decrypts a config's data, once per config ID.
func (d *Docker) open(c swarm.Config) (opened, error) {
	d.mu.Lock()
	o, ok := d.opened[c.ID]
	d.mu.Unlock()
	if ok {
		return o, nil
	}
	data, ns := c.Spec.Data, d.aead.NonceSize()
	if len(data) < ns {
		return opened{}, fmt.Errorf("fleet: config %s: short data", c.Spec.Name)
	}
	plain, err := d.aead.Open(nil, data[:ns], data[ns:], []byte(d.prefix))
	if err != nil {
		return opened{}, fmt.Errorf("fleet: config %s: does not open with the state key", c.Spec.Name)
	}
	i := bytes.IndexByte(plain, 0)
	if i < 0 {
		return opened{}, fmt.Errorf("fleet: config %s: no key", c.Spec.Name)
	}
	o = opened{key: string(plain[:i]), value: plain[i+1:]}
	d.mu.Lock()
	d.opened[c.ID] = o
	d.mu.Unlock()
	return o, nil
}

// list returns the state's configs of kind, with the given id if not "".
func (d *Docker) list(ctx context.Context, kind, id string) ([]swarm.Config, error) {
	f := filters.NewArgs(filters.Arg("label", labelNS+"="+d.prefix), filters.Arg("label", labelKind+"="+kind))
	if id != "" {
		f.Add("label", labelID+"="+id)
	}
	cs, err := d.cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("fleet: docker: list configs: %w", err)
	}
	out := cs[:0]
	for _, c := range cs { // the label filter is the daemon's; check it here too
		if c.Spec.Labels[labelNS] == d.prefix && strings.HasPrefix(c.Spec.Name, d.prefix) {
			out = append(out, c)
		}
	}
	return out, nil
}

func seqOf(c swarm.Config) int64 {
	n, _ := strconv.ParseInt(c.Spec.Labels[labelSeq], 10, 64)
	return n
}

// newest returns the newest config holding key, if any.
func (d *Docker) newest(ctx context.Context, key string) (swarm.Config, opened, bool, error) {
	cs, err := d.list(ctx, "value", hashOf(key))
	if err != nil {
		return swarm.Config{}, opened{}, false, err
	}
	var best swarm.Config
	var bestO opened
	found := false
	for _, c := range cs {
		if found && seqOf(c) <= seqOf(best) {
			continue
		}
		o, err := d.open(c)
		if err != nil || o.key != key {
			continue
		}
		best, bestO, found = c, o, true
	}
	return best, bestO, found, nil
}

// nextSeq is the write time in Unix ns, strictly increasing in this process.
func (d *Docker) nextSeq() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.now().UnixNano()
	if s <= d.lastSeq {
		s = d.lastSeq + 1
	}
	d.lastSeq = s
	return s
}

// Store writes value as a new config, then removes the key's older ones.
func (d *Docker) Store(ctx context.Context, key string, value []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("fleet: %q: value of %d bytes over the limit of %d", trim(key), len(value), MaxValueLen)
	}
	data, err := d.seal(key, value)
	if err != nil {
		return err
	}
	id, seq := hashOf(key), d.nextSeq()
	spec := swarm.ConfigSpec{Data: data, Annotations: swarm.Annotations{
		Name:   fmt.Sprintf("%sv-%s-%016x", d.prefix, id, seq),
		Labels: map[string]string{labelNS: d.prefix, labelKind: "value", labelID: id, labelSeq: strconv.FormatInt(seq, 10)},
	}}
	if _, err := d.cli.ConfigCreate(ctx, spec); err != nil {
		return fmt.Errorf("fleet: docker: store %q: %w", trim(key), err)
	}
	cs, err := d.list(ctx, "value", id)
	if err != nil {
		return nil // written; the older configs go with the next write
	}
	for _, c := range cs {
		if seqOf(c) < seq {
			d.remove(ctx, c.ID)
		}
	}
	return nil
}

// remove deletes a config; one already gone is no error.
func (d *Docker) remove(ctx context.Context, id string) error {
	err := d.cli.ConfigRemove(ctx, id)
	d.mu.Lock()
	delete(d.opened, id)
	d.mu.Unlock()
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("fleet: docker: remove config: %w", err)
	}
	return nil
}

// Load returns key's newest value.
func (d *Docker) Load(ctx context.Context, key string) ([]byte, error) {
	_, o, ok, err := d.newest(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notExist(key)
	}
	return bytes.Clone(o.value), nil
}

// all returns every value config with its opened content; configs that do
// not open (another key's state under the same prefix) are left out.
func (d *Docker) all(ctx context.Context) ([]swarm.Config, []opened, error) {
	cs, err := d.list(ctx, "value", "")
	if err != nil {
		return nil, nil, err
	}
	live := make(map[string]bool, len(cs))
	var keep []swarm.Config
	var os []opened
	for _, c := range cs {
		live[c.ID] = true
		if o, err := d.open(c); err == nil {
			keep, os = append(keep, c), append(os, o)
		}
	}
	d.mu.Lock()
	for id := range d.opened { // forget configs that are gone
		if !live[id] {
			delete(d.opened, id)
		}
	}
	d.mu.Unlock()
	return keep, os, nil
}

func (d *Docker) keys(ctx context.Context) ([]string, error) {
	_, os, err := d.all(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.key
	}
	return out, nil
}

// Delete removes every config of key and of the keys below it.
func (d *Docker) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	cs, os, err := d.all(ctx)
	if err != nil {
		return err
	}
	for i, c := range cs {
		if os[i].key == key || under(os[i].key, key) {
			if err := d.remove(ctx, c.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Exists reports whether key holds a value or is a prefix of keys that do.
func (d *Docker) Exists(ctx context.Context, key string) bool {
	_, err := d.Stat(ctx, key)
	return err == nil
}

// List returns the keys below prefix.
func (d *Docker) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	return list(func() ([]string, error) { return d.keys(ctx) }, prefix, recursive)
}

// Stat describes key; a value's Modified is its write time.
func (d *Docker) Stat(ctx context.Context, key string) (KeyInfo, error) {
	c, o, ok, err := d.newest(ctx, key)
	if err != nil {
		return KeyInfo{}, err
	}
	if ok {
		return KeyInfo{Key: key, Modified: time.Unix(0, seqOf(c)), Size: int64(len(o.value)), IsTerminal: true}, nil
	}
	all, err := d.keys(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	if ki, ok := statKeys(all, key); ok {
		return ki, nil
	}
	return KeyInfo{}, notExist(key)
}

func (d *Docker) lockName(name string) string { return d.prefix + "l-" + hashOf(name) }

func newToken() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return "", fmt.Errorf("fleet: lock token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// TryLock creates the lock's config; if it exists and has expired, it
// removes it (by ID: of two replicas taking over at once, one removes and
// creates, the other's remove or create fails) and tries once more.
func (d *Docker) TryLock(ctx context.Context, name string, ttl time.Duration) (string, bool, error) {
	if err := CheckKey(name); err != nil {
		return "", false, err
	}
	tok, err := newToken()
	if err != nil {
		return "", false, err
	}
	data, err := d.seal(name, nil)
	if err != nil {
		return "", false, err
	}
	for attempt := 0; attempt < 2; attempt++ {
		spec := swarm.ConfigSpec{Data: data, Annotations: swarm.Annotations{
			Name: d.lockName(name),
			Labels: map[string]string{labelNS: d.prefix, labelKind: "lock", labelID: hashOf(name), labelToken: tok,
				labelExpires: strconv.FormatInt(d.now().Add(ttl).UnixNano(), 10)},
		}}
		_, err := d.cli.ConfigCreate(ctx, spec)
		if err == nil {
			return tok, true, nil
		}
		if !cerrdefs.IsConflict(err) && !cerrdefs.IsAlreadyExists(err) {
			return "", false, fmt.Errorf("fleet: docker: lock %q: %w", trim(name), err)
		}
		c, _, err := d.cli.ConfigInspectWithRaw(ctx, d.lockName(name))
		if cerrdefs.IsNotFound(err) {
			continue // released meanwhile
		}
		if err != nil {
			return "", false, fmt.Errorf("fleet: docker: lock %q: %w", trim(name), err)
		}
		if !d.expired(c) {
			return "", false, nil
		}
		if err := d.remove(ctx, c.ID); err != nil {
			return "", false, err
		}
	}
	return "", false, nil
}

func (d *Docker) expired(c swarm.Config) bool {
	n, err := strconv.ParseInt(c.Spec.Labels[labelExpires], 10, 64)
	return err != nil || d.now().UnixNano() >= n
}

// heldLock returns the lock's config if token holds it.
func (d *Docker) heldLock(ctx context.Context, name, token string) (swarm.Config, error) {
	c, _, err := d.cli.ConfigInspectWithRaw(ctx, d.lockName(name))
	if cerrdefs.IsNotFound(err) {
		return c, ErrLockLost
	}
	if err != nil {
		return c, fmt.Errorf("fleet: docker: lock %q: %w", trim(name), err)
	}
	if c.Spec.Labels[labelNS] != d.prefix || c.Spec.Labels[labelToken] != token {
		return c, ErrLockLost
	}
	return c, nil
}

// Refresh moves the lock's expiry label (labels are the one part of a
// config that can change; the update carries the config's version, so a
// concurrent takeover makes it fail).
func (d *Docker) Refresh(ctx context.Context, name, token string, ttl time.Duration) error {
	c, err := d.heldLock(ctx, name, token)
	if err != nil {
		return err
	}
	spec := c.Spec
	spec.Labels = map[string]string{}
	for k, v := range c.Spec.Labels {
		spec.Labels[k] = v
	}
	spec.Labels[labelExpires] = strconv.FormatInt(d.now().Add(ttl).UnixNano(), 10)
	if err := d.cli.ConfigUpdate(ctx, c.ID, c.Version, spec); err != nil {
		return fmt.Errorf("fleet: docker: refresh lock %q: %w", trim(name), err)
	}
	return nil
}

// Unlock removes the lock's config if token still holds it.
func (d *Docker) Unlock(ctx context.Context, name, token string) error {
	c, err := d.heldLock(ctx, name, token)
	if err != nil {
		return err
	}
	return d.remove(ctx, c.ID)
}

// Purge removes every config of the state, values and locks: for tests,
// and for an operator who retires the state.
func (d *Docker) Purge(ctx context.Context) error {
	cs, err := d.cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: filters.NewArgs(filters.Arg("label", labelNS+"="+d.prefix))})
	if err != nil {
		return fmt.Errorf("fleet: docker: list configs: %w", err)
	}
	for _, c := range cs {
		if c.Spec.Labels[labelNS] == d.prefix && strings.HasPrefix(c.Spec.Name, d.prefix) {
			if err := d.remove(ctx, c.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ Store = (*Docker)(nil)
