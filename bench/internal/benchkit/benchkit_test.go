package benchkit

import (
	"errors"
	"flag"
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
