package benchkit

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFlagSet(t *testing.T) {
	var stderr strings.Builder
	fs := FlagSet("tool", &stderr)
	fs.Int("conns", 1, "connections")
	if err := fs.Parse([]string{"-conns", "x"}); err == nil {
		t.Fatal("bad value parsed")
	}
	if !strings.Contains(stderr.String(), "-conns") {
		t.Errorf("stderr %q does not show the usage", stderr.String())
	}
	if err := fs.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestParseListen(t *testing.T) {
	fs := FlagSet("tool", io.Discard)
	n := fs.Int("n", 0, "a number")
	ln, err := ParseListen(fs, []string{"-n", "3", "-listen", "127.0.0.1:0"}, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if *n != 3 {
		t.Errorf("-n %d, want 3", *n)
	}
	if _, err := ParseListen(FlagSet("tool", io.Discard), []string{"-listen", "127.0.0.1:notaport"}, ""); err == nil ||
		!strings.HasPrefix(err.Error(), "tool: listen: ") {
		t.Errorf("bad address: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, x := range n {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.99, 10 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.5, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Percentile(tt.in, tt.q); got != tt.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
		}
	}
}

func TestCheckLoadAndReadPin(t *testing.T) {
	for _, tt := range []struct {
		conns int
		d     time.Duration
		ok    bool
	}{{16, 5 * time.Second, true}, {0, time.Second, false}, {5000, time.Second, false}, {1, 0, false}, {1, time.Hour, false}} {
		if err := CheckLoad("x", tt.conns, tt.d); (err == nil) != tt.ok {
			t.Errorf("CheckLoad(%d, %s) = %v", tt.conns, tt.d, err)
		}
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bad.crt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, file := range []string{"", filepath.Join(dir, "missing.crt"), notPEM} {
		if _, err := ReadPin("x", file); err == nil {
			t.Errorf("ReadPin(%q) accepted", file)
		}
	}
	good := filepath.Join(dir, "good.crt")
	os.WriteFile(good, []byte("-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n"), 0o600)
	if pin, err := ReadPin("x", good); err != nil || string(pin) != "\x01\x02\x03" {
		t.Errorf("ReadPin = %x, %v", pin, err)
	}
}
