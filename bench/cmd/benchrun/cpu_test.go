package main

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime ...
	tail := " S 41 42 42 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 3 0 12345 0 0"
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{"plain", "42 (nginx)" + tail, procStat{ppid: 41, ticks: 1801}, false},
		{"command with spaces", "42 (nginx: worker process)" + tail, procStat{ppid: 41, ticks: 1801}, false},
		{"command with parentheses", "42 (a) b (c))" + tail, procStat{ppid: 41, ticks: 1801}, false},
		{"no command", "42 nginx S 41", procStat{}, true},
		{"too short", "42 (nginx) S 41 42", procStat{}, true},
		{"not a number", "42 (nginx) S x 42 42 0 -1 4194560 100 0 0 0 1234 567", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(tt.line)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseProcStat = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTreeTicks(t *testing.T) {
	procs := map[int]procStat{
		1:  {ppid: 0, ticks: 1000},
		10: {ppid: 1, ticks: 5},  // nginx master
		11: {ppid: 10, ticks: 7}, // its worker
		12: {ppid: 11, ticks: 2}, // a grandchild
		20: {ppid: 1, ticks: 50}, // someone else
	}
	tests := []struct {
		root int
		want uint64
	}{
		{10, 14},
		{11, 9},
		{20, 50},
		{0, 0},  // no process
		{99, 0}, // exited
	}
	for _, tt := range tests {
		if got := treeTicks(tt.root, procs); got != tt.want {
			t.Errorf("treeTicks(%d) = %d, want %d", tt.root, got, tt.want)
		}
	}
}

func TestTreePIDs(t *testing.T) {
	procs := map[int]procStat{
		1:  {ppid: 0},
		10: {ppid: 1},  // nginx master
		11: {ppid: 10}, // its worker
		20: {ppid: 1},  // someone else
	}
	tests := []struct {
		root int
		want []int
	}{
		{10, []int{10, 11}},
		{11, []int{11}},
		{0, nil},  // no process
		{99, nil}, // exited
	}
	for _, tt := range tests {
		if got := treePIDs(tt.root, procs); !slices.Equal(got, tt.want) {
			t.Errorf("treePIDs(%d) = %v, want %v", tt.root, got, tt.want)
		}
	}
}

func TestParseCoreTicks(t *testing.T) {
	stat := strings.Join([]string{
		"cpu  300 20 100 5000 10 1 2 3 0 0",
		"cpu0 100 10 50 2500 5 1 2 3 0 0",
		"cpu1 200 10 50 2500 5 0 0 0 0 0",
		"cpu10 9 9 9 9 9 9 9 9 0 0",
		"intr 12345",
	}, "\n")
	tests := []struct {
		cpu     int
		want    coreTicks
		wantErr bool
	}{
		{0, coreTicks{process: 160, irq: 3, steal: 3, total: 2671}, false},
		{1, coreTicks{process: 260, irq: 0, steal: 0, total: 2765}, false},
		{10, coreTicks{process: 27, irq: 18, steal: 9, total: 72}, false},
		{2, coreTicks{}, true},
	}
	for _, tt := range tests {
		got, err := parseCoreTicks(stat, tt.cpu)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseCoreTicks(cpu%d) = %+v, %v; want %+v, error %v", tt.cpu, got, err, tt.want, tt.wantErr)
		}
	}
	if _, err := parseCoreTicks("cpu0 1 2 3", 0); err == nil {
		t.Error("a short cpu line parsed")
	}
}

func TestBusy(t *testing.T) {
	tests := []struct {
		a, b coreTicks
		want float64
	}{
		{coreTicks{process: 10, irq: 0, total: 100}, coreTicks{process: 20, irq: 5, total: 200}, 0.15},
		{coreTicks{total: 100}, coreTicks{total: 100}, 0}, // no time passed
		{coreTicks{process: 0, total: 0}, coreTicks{process: 50, total: 50}, 1},
	}
	for _, tt := range tests {
		if got := busy(tt.a, tt.b); got != tt.want {
			t.Errorf("busy(%+v, %+v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestMeasureUsage(t *testing.T) {
	// Over 1000 ticks (10 s) per core: the proxy ran 990 ticks of core 0's
	// 1000 busy ones, the backend 400 and the generator 560 of core 1's 980.
	s0 := snapshot{proxy: 10, backend: 100,
		proxyCore: coreTicks{process: 1000, total: 10000}, loadCore: coreTicks{process: 2000, irq: 10, total: 10000}}
	s1 := snapshot{proxy: 1000, backend: 500,
		proxyCore: coreTicks{process: 2000, total: 11000}, loadCore: coreTicks{process: 2980, irq: 20, total: 11000}}
	tests := []struct {
		name     string
		gen      float64
		work     float64
		hasProxy bool
		want     string // usage.String()
	}{
		{"proxy, 200k requests", 560, 200000, true, "990 49.5 99 99 2"},
		{"direct run", 560, 200000, false, "990 - - 99 2"},
		{"no work", 560, 0, true, "990 - 99 99 2"},
		{"other work on the load core", 100, 200000, true, "990 49.5 99 99 48"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := measureUsage(s0, s1, tt.gen, tt.work, tt.hasProxy).String(); got != tt.want {
				t.Errorf("usage = %q, want %q", got, tt.want)
			}
		})
	}
	// Counters that went backwards (a process tree that lost a child) never
	// give negative other load.
	if u := measureUsage(s1, s0, 0, 1, true); u.other != 0 {
		t.Errorf("other = %v for counters going back, want 0", u.other)
	}
}

func TestValueAndRatio(t *testing.T) {
	tests := []struct {
		x, y value
		want string
	}{
		{known(54.6, 1), known(23.2, 1), "2.35"},
		{known(51367, 0), known(42689, 0), "1.20"},
		{known(0.251, 3), known(0.703, 3), "0.36"},
		{value{}, known(23.2, 1), "-"},
		{known(54.6, 1), value{}, "-"},
		{known(54.6, 1), known(0, 1), "-"},
	}
	for _, tt := range tests {
		if got := ratio(tt.x, tt.y).String(); got != tt.want {
			t.Errorf("ratio(%s, %s) = %s, want %s", tt.x, tt.y, got, tt.want)
		}
	}
	// A value is the figure as printed, and ratios use that.
	if v := known(2.0/3, 1); v.v != 0.7 || v.String() != "0.7" {
		t.Errorf("known(2/3, 1) = %v %q", v.v, v)
	}
	if v := known(math.NaN(), 1); v.ok {
		t.Error("NaN is a known value")
	}
}

func TestBound(t *testing.T) {
	tests := []struct {
		other float64
		share value
		want  string
	}{
		{3, known(99, 0), "proxy"},
		{3, known(90, 0), "proxy"},
		{3, known(89, 0), "load"},
		{10, known(59, 0), "load"},
		{11, known(99, 0), "noisy"},
		{0, value{}, "-"},
		{13, value{}, "noisy"},
	}
	for _, tt := range tests {
		if got := bound(tt.other, tt.share); got != tt.want {
			t.Errorf("bound(%v, %s) = %s, want %s", tt.other, tt.share, got, tt.want)
		}
	}
}
