package benchkit

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
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
