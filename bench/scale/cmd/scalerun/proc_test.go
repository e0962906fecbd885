package main

import (
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194304 99 0 0 0 150 50 0 0 20 0 9 0 4142306 3133440 414"
	got, err := parseStatCPU(stat)
	if err != nil || got != 2.0 {
		t.Errorf("parseStatCPU = %v, %v; want 2 s (150+50 ticks)", got, err)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Error("short stat line: no error")
	}
}

func TestParseStatus(t *testing.T) {
	got := parseStatus("Name:\tswarmgate\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n")
	if got.RSS != 100<<20 || got.HWM != 200<<20 {
		t.Errorf("parseStatus = %+v, want RSS 100 MiB, HWM 200 MiB", got)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		p    int
		want time.Duration
	}{{50, 50 * time.Millisecond}, {95, 95 * time.Millisecond}, {100, 100 * time.Millisecond}} {
		if got := percentile(ds, tt.p); got != tt.want {
			t.Errorf("p%d = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile([]time.Duration{7}, 95); got != 7 {
		t.Errorf("p95 of one = %v, want 7", got)
	}
}
