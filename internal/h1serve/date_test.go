package h1serve

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCurrentDate: the Date line is the current second's, one line for
// every response of that second, and the next second's once it has begun
// (its timer cleared the last one), so it is never a second stale.
func TestCurrentDate(t *testing.T) {
	var s Server
	parse := func(line []byte) time.Time {
		t.Helper()
		v, ok := strings.CutPrefix(string(line), "Date: ")
		if !ok || !strings.HasSuffix(v, "\r\n") {
			t.Fatalf("line %q", line)
		}
		d, err := http.ParseTime(strings.TrimSuffix(v, "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for range 3 {
		before := time.Now().Truncate(time.Second)
		line := s.currentDate()
		after := time.Now()
		if d := parse(line); d.Before(before) || d.After(after) {
			t.Errorf("Date %v, read between %v and %v", d, before, after)
		}
		if again := s.currentDate(); &again[0] != &line[0] && time.Now().Unix() == after.Unix() {
			t.Errorf("a second line within the same second")
		}
		// Into the next second, past its timer.
		time.Sleep(time.Until(after.Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	}
}
