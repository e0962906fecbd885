package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/swarmgate/swarmgate/internal/testkit"
)

// fakeClock is a settable clock for lock expiry.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// testStore runs the behaviour every Store shares.
func testStore(t *testing.T, s Store, clock *fakeClock) {
	ctx := context.Background()
	t.Run("values", func(t *testing.T) {
		if _, err := s.Load(ctx, "certs/a.example.org/a.crt"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
		}
		for _, kv := range [][2]string{
			{"certs/a.example.org/a.crt", "A1"},
			{"certs/a.example.org/a.key", "AK"},
			{"certs/b.example.org/b.crt", "B"},
			{"acme/account.json", "{}"},
		} {
			if err := s.Store(ctx, kv[0], []byte(kv[1])); err != nil {
				t.Fatalf("Store %s: %v", kv[0], err)
			}
		}
		clock.Add(time.Second)
		if err := s.Store(ctx, "certs/a.example.org/a.crt", []byte("A2")); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Load(ctx, "certs/a.example.org/a.crt"); err != nil || string(v) != "A2" {
			t.Fatalf("Load after overwrite = %q, %v; want A2", v, err)
		}
		ki, err := s.Stat(ctx, "certs/a.example.org/a.crt")
		if err != nil || !ki.IsTerminal || ki.Size != 2 || !ki.Modified.Equal(clock.Now()) {
			t.Fatalf("Stat = %+v, %v; want terminal, size 2, modified %v", ki, err, clock.Now())
		}
		if ki, err := s.Stat(ctx, "certs/a.example.org"); err != nil || ki.IsTerminal {
			t.Fatalf("Stat of a prefix = %+v, %v; want a non-terminal key", ki, err)
		}
		if !s.Exists(ctx, "certs") || s.Exists(ctx, "cert") || s.Exists(ctx, "certs/c.example.org") {
			t.Fatal("Exists: want certs, not cert nor certs/c.example.org")
		}
		for _, c := range []struct {
			prefix    string
			recursive bool
			want      []string
		}{
			{"certs", false, []string{"certs/a.example.org", "certs/b.example.org"}},
			{"certs", true, []string{"certs/a.example.org/a.crt", "certs/a.example.org/a.key", "certs/b.example.org/b.crt"}},
			{"", false, []string{"acme", "certs"}},
			{"certs/a.example.org", false, []string{"certs/a.example.org/a.crt", "certs/a.example.org/a.key"}},
		} {
			got, err := s.List(ctx, c.prefix, c.recursive)
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("List(%q, %v) = %q, %v; want %q", c.prefix, c.recursive, got, err, c.want)
			}
		}
		if _, err := s.List(ctx, "nothing", true); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("List of a missing prefix: %v, want fs.ErrNotExist", err)
		}
		if err := s.Delete(ctx, "certs/a.example.org"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "certs/never"); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
		if got, _ := s.List(ctx, "", true); !slices.Equal(got, []string{"acme/account.json", "certs/b.example.org/b.crt"}) {
			t.Fatalf("after Delete of a prefix: %q", got)
		}
		big := bytes.Repeat([]byte("x"), MaxValueLen+1)
		if err := s.Store(ctx, "big", big); err == nil {
			t.Error("a value over MaxValueLen was stored")
		}
		for _, bad := range []string{"", "/a", "a/", "a//b", "a/../b", "a b", "a\\b"} {
			if err := s.Store(ctx, bad, []byte("v")); err == nil {
				t.Errorf("Store(%q) accepted a bad key", bad)
			}
		}
	})
	t.Run("locks", func(t *testing.T) {
		tok, ok, err := s.TryLock(ctx, "issue_cert_a.example.org", time.Minute)
		if err != nil || !ok {
			t.Fatalf("TryLock = %v, %v; want taken", ok, err)
		}
		if _, ok, err := s.TryLock(ctx, "issue_cert_a.example.org", time.Minute); err != nil || ok {
			t.Fatalf("second TryLock = %v, %v; want held", ok, err)
		}
		clock.Add(50 * time.Second)
		if err := s.Refresh(ctx, "issue_cert_a.example.org", tok, time.Minute); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		clock.Add(50 * time.Second)
		if _, ok, _ := s.TryLock(ctx, "issue_cert_a.example.org", time.Minute); ok {
			t.Fatal("a refreshed lock was taken over")
		}
		if err := s.Unlock(ctx, "issue_cert_a.example.org", "wrong"); !errors.Is(err, ErrLockLost) {
			t.Fatalf("Unlock with another token: %v, want ErrLockLost", err)
		}
		if err := s.Unlock(ctx, "issue_cert_a.example.org", tok); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		// A holder that dies: its lock is taken over once expired.
		dead, ok, _ := s.TryLock(ctx, "issue_cert_b.example.org", time.Minute)
		if !ok {
			t.Fatal("TryLock of a free lock failed")
		}
		clock.Add(61 * time.Second)
		tok2, ok, err := s.TryLock(ctx, "issue_cert_b.example.org", time.Minute)
		if err != nil || !ok {
			t.Fatalf("TryLock of an expired lock = %v, %v; want taken over", ok, err)
		}
		if err := s.Refresh(ctx, "issue_cert_b.example.org", dead, time.Minute); !errors.Is(err, ErrLockLost) {
			t.Fatalf("Refresh by the dead holder: %v, want ErrLockLost", err)
		}
		if err := s.Unlock(ctx, "issue_cert_b.example.org", tok2); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("one winner", func(t *testing.T) {
		var wg sync.WaitGroup
		var won atomic.Int32
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, ok, err := s.TryLock(ctx, "race", time.Minute); err == nil && ok {
					won.Add(1)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d of 4 concurrent TryLocks won, want 1", won.Load())
		}
	})
}

func TestMemory(t *testing.T) {
	c := newFakeClock()
	testStore(t, &Memory{Now: c.Now}, c)
}

// dockerClient returns the local engine's client, or skips the test outside
// CI when there is none.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := testkit.SwarmManager()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker in swarm mode is required in CI: %v", err)
		}
		t.Skipf("no Docker swarm manager (scripts/docker-up.sh): %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// testPrefix is a prefix no other state uses.
func testPrefix() string {
	var b [2]byte
	rand.Read(b[:])
	return "swarmgate-state-t" + hex.EncodeToString(b[:]) + "-"
}

func TestDocker(t *testing.T) {
	cli := dockerClient(t)
	key := bytes.Repeat([]byte{7}, 32)
	c := newFakeClock()
	prefix := testPrefix()
	d, err := NewDocker(DockerOptions{Client: cli, Key: key, Prefix: prefix, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Purge(context.Background()); err != nil {
			t.Error(err)
		}
		if cs, _ := d.list(context.Background(), "value", ""); len(cs) != 0 {
			t.Errorf("%d configs left after Purge", len(cs))
		}
	})
	testStore(t, d, c)

	ctx := context.Background()
	t.Run("sealed", func(t *testing.T) {
		secret := []byte("-----BEGIN EC PRIVATE KEY----- test")
		if err := d.Store(ctx, "certs/s.example.org/s.key", secret); err != nil {
			t.Fatal(err)
		}
		cs, err := d.list(ctx, "value", hashOf("certs/s.example.org/s.key"))
		if err != nil || len(cs) != 1 {
			t.Fatalf("configs of the key: %d, %v; want 1", len(cs), err)
		}
		if bytes.Contains(cs[0].Spec.Data, secret) || bytes.Contains(cs[0].Spec.Data, []byte("s.example.org")) {
			t.Fatal("the config's data holds the value or key in clear")
		}
		// Another replica with the same key reads it; one with another key
		// sees nothing.
		d2, _ := NewDocker(DockerOptions{Client: cli, Key: key, Prefix: prefix, Now: c.Now})
		if v, err := d2.Load(ctx, "certs/s.example.org/s.key"); err != nil || !bytes.Equal(v, secret) {
			t.Fatalf("second replica Load = %q, %v", v, err)
		}
		other, _ := NewDocker(DockerOptions{Client: cli, Key: bytes.Repeat([]byte{8}, 32), Prefix: prefix, Now: c.Now})
		if _, err := other.Load(ctx, "certs/s.example.org/s.key"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load with another key: %v, want fs.ErrNotExist", err)
		}
	})
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	short, long := dir+"/short", dir+"/long"
	os.WriteFile(short, []byte("too short"), 0o600)
	os.WriteFile(long, []byte("Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=\n"), 0o600)
	if _, err := LoadKey(short); err == nil {
		t.Error("a 9-byte key file was accepted")
	}
	if _, err := LoadKey(dir + "/missing"); err == nil {
		t.Error("a missing key file was accepted")
	}
	k, err := LoadKey(long)
	if err != nil || len(k) != 32 {
		t.Fatalf("LoadKey = %d bytes, %v", len(k), err)
	}
}
