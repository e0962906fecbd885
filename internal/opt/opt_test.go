package opt

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, tt := range []struct{ in, want time.Duration }{
		{0, time.Second}, {-1, time.Second}, {time.Millisecond, time.Millisecond},
	} {
		v := tt.in
		Positive(&v, time.Second)
		if v != tt.want {
			t.Errorf("Positive(%v, 1s) = %v, want %v", tt.in, v, tt.want)
		}
	}
	n := 0
	Positive(&n, 8)
	if n != 8 {
		t.Errorf("Positive(0, 8) = %d", n)
	}
}
