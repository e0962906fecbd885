package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ClientOptions configure a Client. Addrs is required.
type ClientOptions struct {
	// Addrs are the control plane replicas, as edge --control takes them
	// (tcp://host:7070). A request that fails on one goes to the next.
	Addrs []string
	// TLS, if set, speaks HTTPS (the control plane's TLS or mutual TLS);
	// if nil, cleartext HTTP/2.
	TLS *tls.Config
	// Transport carries the requests. If nil, one is built from TLS.
	Transport http.RoundTripper
	// Timeout bounds one request. If zero, DefaultTimeout.
	Timeout time.Duration
	// Logger receives lock losses. If nil, nothing is logged.
	Logger *zap.Logger
}

// Client is an edge's view of the state through the control plane, shaped
// as certmagic.Storage: Store, Load, Delete, Exists, List, Stat and a
// blocking Lock whose lock the Client refreshes until Unlock.
type Client struct {
	base    []string // http(s)://host:port
	http    *http.Client
	timeout time.Duration
	log     *zap.Logger

	mu   sync.Mutex // guards held and next
	held map[string]*heldLock
	next int // the replica to ask first
}

type heldLock struct {
	token string
	stop  chan struct{}
	done  chan struct{}
}

// NewClient returns a Client for o.
func NewClient(o ClientOptions) (*Client, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("fleet: client: no control plane address")
	}
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
	}
	c := &Client{timeout: o.Timeout, log: o.Logger, held: map[string]*heldLock{}}
	for _, a := range o.Addrs {
		hostport, ok := strings.CutPrefix(a, "tcp://")
		if !ok || hostport == "" || strings.ContainsAny(hostport, "/?#") {
			return nil, fmt.Errorf("fleet: client: address %q: want tcp://host:port", a)
		}
		c.base = append(c.base, scheme+"://"+hostport)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	rt := o.Transport
	if rt == nil {
		p := new(http.Protocols)
		if o.TLS != nil {
			p.SetHTTP2(true)
		} else {
			p.SetUnencryptedHTTP2(true)
		}
		rt = &http.Transport{Protocols: p, TLSClientConfig: o.TLS, IdleConnTimeout: time.Minute}
	}
	c.http = &http.Client{Transport: rt}
	return c, nil
}

// do sends the request to the replicas in turn until one that serves the
// state answers with anything but 5xx, and goes round them again with
// backoff (100 ms doubling to 2 s) while none does, for at most timeout:
// a control plane restarting costs a wait, not an error. The caller closes
// the body.
func (c *Client) do(ctx context.Context, method, path string, body []byte, timeout time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	c.mu.Lock()
	first := c.next
	c.mu.Unlock()
	var lastErr error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		for i := range c.base {
			n := (first + i) % len(c.base)
			req, err := http.NewRequestWithContext(ctx, method, c.base[n]+path, bytes.NewReader(body))
			if err != nil {
				cancel()
				return nil, fmt.Errorf("fleet: %w", err)
			}
			resp, err := c.http.Do(req)
			if err == nil {
				switch {
				case resp.StatusCode >= 500:
					msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
					err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
				case resp.Header.Get(stateHeader) == "":
					err = errors.New("the control plane serves no state: run it with --state-key-file")
				default:
					c.mu.Lock()
					c.next = n
					c.mu.Unlock()
					resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
					return resp, nil
				}
				resp.Body.Close()
			}
			lastErr = fmt.Errorf("fleet: %s %s: %w", method, c.base[n], err)
		}
		select {
		case <-ctx.Done():
			cancel()
			return nil, lastErr
		case <-time.After(wait):
		}
	}
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// call does a request and reads an answer of at most limit bytes, mapping
// 404 to fs.ErrNotExist and 409 to ErrLockLost.
func (c *Client) call(ctx context.Context, method, path string, body []byte, limit int64) ([]byte, int, error) {
	resp, err := c.do(ctx, method, path, body, c.timeout)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("fleet: %s %s: %w", method, path, err)
	}
	if int64(len(b)) > limit {
		return nil, resp.StatusCode, fmt.Errorf("fleet: %s %s: answer over %d bytes", method, path, limit)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent:
		return b, resp.StatusCode, nil
	case http.StatusNotFound:
		return nil, resp.StatusCode, fmt.Errorf("fleet: %s: %w", path, fs.ErrNotExist)
	case http.StatusConflict:
		return nil, resp.StatusCode, ErrLockLost
	}
	return nil, resp.StatusCode, fmt.Errorf("fleet: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
}

func keyPath(op, key string) string { return Path + op + "/" + (&url.URL{Path: key}).EscapedPath() }

// Store sets key to value.
func (c *Client) Store(ctx context.Context, key string, value []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("fleet: %q: value of %d bytes over the limit of %d", trim(key), len(value), MaxValueLen)
	}
	_, _, err := c.call(ctx, http.MethodPut, keyPath("value", key), value, 4<<10)
	return err
}

// Load returns key's value.
func (c *Client) Load(ctx context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	b, _, err := c.call(ctx, http.MethodGet, keyPath("value", key), nil, MaxValueLen)
	return b, err
}

// Delete removes key and every key below it.
func (c *Client) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	_, _, err := c.call(ctx, http.MethodDelete, keyPath("value", key), nil, 4<<10)
	return err
}

// Exists reports whether key holds a value or is a prefix of keys that do.
func (c *Client) Exists(ctx context.Context, key string) bool {
	_, err := c.Stat(ctx, key)
	return err == nil
}

// List returns the keys below prefix.
func (c *Client) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	q := url.Values{"prefix": {prefix}}
	if recursive {
		q.Set("recursive", "1")
	}
	b, _, err := c.call(ctx, http.MethodGet, Path+"list?"+q.Encode(), nil, 16<<20)
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("fleet: list: %w", err)
	}
	return keys, nil
}

// Stat describes key.
func (c *Client) Stat(ctx context.Context, key string) (KeyInfo, error) {
	if err := CheckKey(key); err != nil {
		return KeyInfo{}, err
	}
	b, _, err := c.call(ctx, http.MethodGet, keyPath("stat", key), nil, 4<<10)
	if err != nil {
		return KeyInfo{}, err
	}
	var ki KeyInfo
	if err := json.Unmarshal(b, &ki); err != nil {
		return KeyInfo{}, fmt.Errorf("fleet: stat: %w", err)
	}
	return ki, nil
}

// Lock blocks until it holds the lock name or ctx is done. The Client
// refreshes the lock at a third of its lifetime until Unlock; an edge that
// dies stops refreshing, and the lock expires for the others.
func (c *Client) Lock(ctx context.Context, name string) error {
	if err := CheckKey(name); err != nil {
		return err
	}
	for {
		resp, err := c.do(ctx, http.MethodPost, keyPath("lock", name), nil, c.timeout+DefaultLockWait)
		if err == nil {
			var g lockGrant
			status := resp.StatusCode
			if status == http.StatusOK {
				err = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&g)
			}
			resp.Body.Close()
			switch {
			case status == http.StatusOK && err == nil && g.Token != "" && g.TTL > 0:
				c.hold(name, g)
				return nil
			case status == http.StatusOK:
				return fmt.Errorf("fleet: lock %q: bad grant: %v", trim(name), err)
			case status != http.StatusConflict:
				return fmt.Errorf("fleet: lock %q: %s", trim(name), resp.Status)
			}
		}
		// Held by another edge, or no replica answered: ask again.
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleet: lock %q: %w", trim(name), ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// hold starts refreshing a granted lock.
func (c *Client) hold(name string, g lockGrant) {
	h := &heldLock{token: g.Token, stop: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	if old := c.held[name]; old != nil { // Lock twice without Unlock: keep the new one
		close(old.stop)
	}
	c.held[name] = h
	c.mu.Unlock()
	go func() {
		defer close(h.done)
		t := time.NewTicker(g.TTL / 3)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), g.TTL/3)
			_, _, err := c.call(ctx, http.MethodPost, keyPath("refresh", name)+"?token="+url.QueryEscape(h.token), nil, 4<<10)
			cancel()
			if errors.Is(err, ErrLockLost) {
				c.log.Warn("state lock lost: it expired and another edge took it", zap.String("lock", trim(name)))
				return
			}
		}
	}()
}

// Unlock releases the lock name that Lock took.
func (c *Client) Unlock(ctx context.Context, name string) error {
	c.mu.Lock()
	h := c.held[name]
	delete(c.held, name)
	c.mu.Unlock()
	if h == nil {
		return fmt.Errorf("fleet: unlock %q: not locked by this edge", trim(name))
	}
	close(h.stop)
	<-h.done
	_, _, err := c.call(ctx, http.MethodPost, keyPath("unlock", name)+"?token="+url.QueryEscape(h.token), nil, 4<<10)
	if errors.Is(err, ErrLockLost) {
		return nil // expired and maybe taken: nothing of ours to release
	}
	return err
}

// Close releases the locks still held (their refreshers stop; the locks
// expire) and the idle connections.
func (c *Client) Close() {
	c.mu.Lock()
	held := c.held
	c.held = map[string]*heldLock{}
	c.mu.Unlock()
	for _, h := range held {
		close(h.stop)
		<-h.done
	}
	c.http.CloseIdleConnections()
}
