package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The rows below are bench/README.md's result tables: formatting their
// figures must give the README's lines back, ratios included.

func testOptions() options {
	return options{conns: 64, rate: 2000, proxyCPU: 0, loadCPU: 1, tlsConns: 16, l4Conns: 1, slowConns: 1000, slowDuration: 60 * time.Second}
}

func TestHTTPTable(t *testing.T) {
	t.Parallel()
	tab := table[httpRow]{
		rows: []httpRow{
			{name: "direct", rps: 51367, p50: 141, p99: 388, load: known(100, 0), other: 1, detail: "wrk: non-2xx=0"},
			{name: "swarmgate", rps: 18211, p50: 203, p99: 1000, cpu: known(54.6, 1), cpuRate: known(84.0, 1),
				share: known(99, 0), load: known(78, 0), other: 3},
			{name: "nginx", rps: 42689, p50: 179, p99: 497, cpu: known(23.2, 1), cpuRate: known(51.5, 1),
				share: known(99, 0), load: known(99, 0), other: 5},
			{name: "haproxy", rps: 44564, p50: 194, p99: 602, cpu: known(22.2, 1), cpuRate: known(61.0, 1),
				share: known(99, 0), load: known(96, 0), other: 9},
			{name: "stdproxy", rps: 12852, p50: 226, p99: 590, cpu: known(77.6, 1), cpuRate: known(110.0, 1),
				share: known(100, 0), load: known(57, 0), other: 0},
		},
		failed: []failure{{"extra", "could not start (see log above)"}},
	}
	got := httpReport(tab, testOptions())
	want := `target        req/s   p50us   p99us cpu/req   @rate  prx%   ld%  oth%  bound | thr/ng cpu/ng p99/ng | errors
direct        51367     141     388       -       -     -   100     1      - |   1.20      -   0.78 | 0
swarmgate     18211     203    1000    54.6    84.0    99    78     3  proxy |   0.43   2.35   2.01 | 0
nginx         42689     179     497    23.2    51.5    99    99     5  proxy |   1.00   1.00   1.00 | 0
haproxy       44564     194     602    22.2    61.0    99    96     9  proxy |   1.04   0.96   1.21 | 0
stdproxy      12852     226     590    77.6   110.0   100    57     0  proxy |   0.30   3.34   1.19 | 0
           FAILED: extra: could not start (see log above)

errors:
  direct     wrk: non-2xx=0
`
	if !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
	if !strings.Contains(got, "closed loop, 64 connections") || !strings.Contains(got, "noisy: oth% > 10") {
		t.Errorf("legend without the run's knobs:\n%s", got)
	}
}

func TestHTTPTableWithoutNGINX(t *testing.T) {
	t.Parallel()
	tab := table[httpRow]{rows: []httpRow{{name: "swarmgate", rps: 18211, p50: 203, p99: 1000, cpu: known(54.6, 1),
		cpuRate: known(84.0, 1), share: known(99, 0), load: known(78, 0), other: 13, errors: 7}}}
	line := strings.Split(httpReport(tab, testOptions()), "\n")[1]
	want := "swarmgate     18211     203    1000    54.6    84.0    99    78    13  noisy |      -      -      - | 7"
	if line != want {
		t.Errorf("row\n%q, want\n%q", line, want)
	}
}

func TestTLSTable(t *testing.T) {
	t.Parallel()
	row := func(name, kind string, rate float64, p50, p99 int64, cpu float64, share, load, other float64) tlsRow {
		return tlsRow{name: name, kind: kind, rate: rate, p50: p50, p99: p99, cpu: known(cpu, 1),
			share: known(share, 0), load: known(load, 0), other: other, detail: "resumed 0/1"}
	}
	tab := table[tlsRow]{rows: []tlsRow{
		row("swarmgate", "1.3 full", 1148, 6294, 36893, 513.6, 59, 98, 35),
		row("swarmgate", "1.2 resumed", 4121, 1635, 19426, 152.0, 63, 96, 23),
		row("nginx", "1.3 full", 1511, 6138, 43671, 443.5, 67, 87, 24),
		row("nginx", "1.3 resumed", 2328, 4956, 21103, 353.1, 82, 90, 10),
		row("nginx", "1.2 resumed", 3485, 2725, 18031, 144.6, 51, 96, 34),
		row("haproxy", "1.3 full", 927, 7055, 48221, 538.1, 50, 92, 41),
	}}
	got := tlsReport(tab, testOptions())
	want := `target     handshake      hs/s   p50us   p99us  cpu/hs  hs/core  prx%   ld%  oth%  bound | thr/ng cpu/ng | errors
swarmgate  1.3 full       1148    6294   36893   513.6     1947    59    98    35  noisy |   0.76   1.16 | 0
swarmgate  1.2 resumed    4121    1635   19426   152.0     6579    63    96    23  noisy |   1.18   1.05 | 0
nginx      1.3 full       1511    6138   43671   443.5     2255    67    87    24  noisy |   1.00   1.00 | 0
nginx      1.3 resumed    2328    4956   21103   353.1     2832    82    90    10   load |   1.00   1.00 | 0
nginx      1.2 resumed    3485    2725   18031   144.6     6916    51    96    34  noisy |   1.00   1.00 | 0
haproxy    1.3 full        927    7055   48221   538.1     1858    50    92    41  noisy |   0.61   1.21 | 0

details:
  swarmgate  1.3 full    resumed 0/1
`
	if !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
	if !strings.Contains(got, "tlsload (16 concurrent loops") {
		t.Errorf("legend without the run's knobs:\n%s", got)
	}
}

func TestL4Table(t *testing.T) {
	t.Parallel()
	tab := table[l4Row]{
		rows: []l4Row{
			{name: "direct", gbps: 26.070, load: known(99, 0), other: 4, bytes: "2147483648", elapsed: "0.659"},
			{name: "swarmgate", gbps: 13.637, cpu: known(0.251, 3), share: known(47, 0), load: known(96, 0), bytes: "2147483648", elapsed: "1.260"},
			{name: "nginx", gbps: 10.117, cpu: known(0.703, 3), share: known(94, 0), load: known(84, 0), bytes: "2147483648", elapsed: "1.698"},
			{name: "haproxy", gbps: 10.450, cpu: known(0.689, 3), share: known(94, 0), load: known(88, 0), bytes: "2147483648", elapsed: "1.644"},
		},
		failed: []failure{{"stdproxy", "transfer failed: l4load: source: dial: connection refused"}},
	}
	got := l4Report(tab, testOptions())
	want := `target      Gbit/s  cpu-s/GB  prx%   ld%  oth%  bound | thr/ng cpu/ng | bytes in s
direct       26.07         -     -    99     4      - |   2.58      - | 2147483648 in 0.659
swarmgate    13.64     0.251    47    96     0   load |   1.35   0.36 | 2147483648 in 1.260
nginx        10.12     0.703    94    84     0  proxy |   1.00   1.00 | 2147483648 in 1.698
haproxy      10.45     0.689    94    88     0  proxy |   1.03   0.98 | 2147483648 in 1.644
           FAILED: stdproxy: transfer failed: l4load: source: dial: connection refused
`
	if !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
}

func TestSlowTable(t *testing.T) {
	t.Parallel()
	row := func(name, attack string, unavail, samples, open, closed, upstream, fds int, rss int64, cpu float64, exit string) slowRow {
		return slowRow{name: name, attack: attack,
			slow: slowResult{samples: samples, unavailable: unavail, connected: open, closed: closed, exit: exit},
			idle: footprint{upstream: 1, fds: 12, rssKiB: 10240},
			peak: footprint{upstream: upstream, fds: fds, rssKiB: rss},
			cpu:  cpu, other: 3, samples: samples}
	}
	tab := table[slowRow]{
		rows: []slowRow{
			row("swarmgate", "headers", 0, 61, 1000, 0, 1, 1012, 40960, 0.52, "Hit test time limit"),
			row("swarmgate", "read", 12, 61, 1000, 0, 1000, 2012, 102400, 1.5, "Hit test time limit"),
			row("nginx", "headers", 0, 61, 1000, 1000, 1, 1008, 8192, 0.21, "No open connections left"),
			row("nginx", "read", 0, 61, 1000, 0, 0, 1006, 20480, 0.8, "Hit test time limit"),
		},
		failed: []failure{{"haproxy", "could not start (see log above)"}},
	}
	got := slowReport(tab, testOptions())
	want := `target     attack     unavail  open closed upstr   fds rss-MiB  cpu-s  oth% |  up/ng fds/ng rss/ng | exit
swarmgate  headers       0/61  1000      0     1  1012    40.0   0.52     3 |   1.00   1.00   5.00 | Hit test time limit
swarmgate  read         12/61  1000      0  1000  2012   100.0   1.50     3 |      -   2.00   5.00 | Hit test time limit
nginx      headers       0/61  1000   1000     1  1008     8.0   0.21     3 |   1.00   1.00   1.00 | No open connections left
nginx      read          0/61  1000      0     0  1006    20.0   0.80     3 |      -   1.00   1.00 | Hit test time limit
           FAILED: haproxy: could not start (see log above)

before each attack (idle):
  swarmgate  headers  upstr 1, fds 12, rss 10.0 MiB; 61 footprint samples
`
	if !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
	if !strings.Contains(got, "slowhttptest, 1000 connections (200/s) for 60 s per attack") {
		t.Errorf("legend without the run's knobs:\n%s", got)
	}
}

func TestEmptyTables(t *testing.T) {
	t.Parallel()
	if got := tlsReport(table[tlsRow]{}, testOptions()); got != "" {
		t.Errorf("empty TLS table = %q", got)
	}
	if got := l4Report(table[l4Row]{}, testOptions()); got != "" {
		t.Errorf("empty L4 table = %q", got)
	}
	if got := slowReport(table[slowRow]{}, testOptions()); got != "" {
		t.Errorf("empty slow table = %q", got)
	}
	// A suite whose every target failed still lists the failures.
	got := tlsReport(table[tlsRow]{failed: []failure{{"nginx", "carried no traffic (see log above)"}}}, testOptions())
	if !strings.Contains(got, "           FAILED: nginx: carried no traffic (see log above)\n") {
		t.Errorf("TLS table of failures:\n%s", got)
	}
}

// TestREADMEHeaders checks that bench/README.md quotes the tables with the
// columns benchrun prints.
func TestREADMEHeaders(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	for name, table := range map[string]string{
		"HTTP":   httpReport(table[httpRow]{}, o),
		"TLS":    tlsReport(table[tlsRow]{failed: []failure{{}}}, o),
		"HTTPS":  httpsReport(table[tlsRow]{failed: []failure{{}}}, o),
		"L4":     l4Report(table[l4Row]{failed: []failure{{}}}, o),
		"slow":   slowReport(table[slowRow]{failed: []failure{{}}}, o),
		"bodies": bodiesReport(table[httpRow]{}, o),
		"close":  closeReport(table[httpRow]{}, o),
		"idle":   holdReport(table[holdRow]{}, "idle", 1),
	} {
		header, _, _ := strings.Cut(table, "\n")
		if !strings.Contains(string(readme), "\n"+header+"\n") {
			t.Errorf("README has no %s table with the header\n%s", name, header)
		}
	}
}

func TestTableAdd(t *testing.T) {
	t.Parallel()
	b := &bench{}
	var tab table[l4Row]
	if err := tab.add(b, "l4", "nginx", l4Row{name: "nginx"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := tab.add(b, "l4", "haproxy", l4Row{}, failedRun{"transfer failed: EOF"}); err != nil {
		t.Fatal(err)
	}
	cancelled := errors.New("context canceled")
	if err := tab.add(b, "l4", "swarmgate", l4Row{}, fmt.Errorf("l4load: %w", cancelled)); !errors.Is(err, cancelled) {
		t.Errorf("add of another error = %v, want it returned", err)
	}
	if len(tab.rows) != 1 || tab.rows[0].name != "nginx" ||
		!slices.Equal(tab.failed, []failure{{"haproxy", "transfer failed: EOF"}}) || !slices.Equal(b.failed, []string{"l4/haproxy"}) {
		t.Errorf("table %+v, run's failures %q", tab, b.failed)
	}
}

// TestBodiesTable: a row per target and body, grouped by body, each ratio
// to NGINX's row of the same body.
func TestBodiesTable(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.bodies = []string{"small", "64k"}
	row := func(name, body string, rps, cpu, rate, p99 float64) httpRow {
		return httpRow{name: name, body: body, rps: rps, p50: 200, p99: p99, cpu: known(cpu, 1), cpuRate: known(rate, 1),
			share: known(99, 0), load: known(90, 0), other: 2, detail: "wrk: non-2xx=0"}
	}
	tab := table[httpRow]{rows: []httpRow{
		row("swarmgate", "64k", 5000, 120, 150, 900), row("nginx", "small", 40000, 20, 50, 500),
		row("swarmgate", "small", 20000, 50, 80, 1000), row("nginx", "64k", 10000, 60, 100, 600),
	}}
	got := bodiesReport(tab, o)
	want := `target     body     req/s   p50us   p99us cpu/req   @rate  prx%   ld%  oth%  bound | thr/ng cpu/ng  @r/ng p99/ng | errors
nginx      small    40000     200     500    20.0    50.0    99    90     2  proxy |   1.00   1.00   1.00   1.00 | 0
swarmgate  small    20000     200    1000    50.0    80.0    99    90     2  proxy |   0.50   2.50   1.60   2.00 | 0
swarmgate  64k       5000     200     900   120.0   150.0    99    90     2  proxy |   0.50   2.00   1.50   1.50 | 0
nginx      64k      10000     200     600    60.0   100.0    99    90     2  proxy |   1.00   1.00   1.00   1.00 | 0
`
	if !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
}

func TestCloseTable(t *testing.T) {
	t.Parallel()
	tab := table[httpRow]{rows: []httpRow{
		{name: "direct", rps: 30000, load: known(100, 0), other: 1},
		{name: "swarmgate", rps: 8000, cpu: known(125, 1), share: known(99, 0), load: known(70, 0), other: 3, errors: 2},
		{name: "nginx", rps: 16000, cpu: known(62.5, 1), share: known(98, 0), load: known(95, 0), other: 4},
	}}
	got := closeReport(tab, testOptions())
	want := `target        req/s cpu/req req/core  prx%   ld%  oth%  bound | thr/ng cpu/ng | errors
direct        30000       -        -     -   100     1      - |   1.88      - | 0
swarmgate      8000   125.0     8000    99    70     3  proxy |   0.50   2.00 | 2
nginx         16000    62.5    16000    98    95     4  proxy |   1.00   1.00 | 0
`
	if !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
	if !strings.Contains(got, "Connection: close") {
		t.Errorf("legend:\n%s", got)
	}
}

// TestHoldTable: RSS per held connection, and its ratio to NGINX's.
func TestHoldTable(t *testing.T) {
	t.Parallel()
	tab := table[holdRow]{rows: []holdRow{
		{name: "swarmgate", opened: 10000, want: 10000, before: 15 << 10, during: 15<<10 + 40000, rechecked: 10000, openSeconds: 2.5, other: 3, detail: "d"},
		{name: "nginx", opened: 10000, want: 10000, before: 14 << 10, during: 14<<10 + 5000, rechecked: 10000, openSeconds: 1.5, other: 1, detail: "d"},
	}}
	got := holdReport(tab, "idle", 10000)
	want := `target       open rss0MiB rss1MiB    +MiB KiB/conn  check open-s  oth% |  kb/ng | details
swarmgate   10000    15.0    54.1    39.1     4.00  10000    2.5     3 |   8.00 | d
nginx       10000    14.0    18.9     4.9     0.50  10000    1.5     1 |   1.00 | d
`
	if !strings.HasPrefix(got, want) {
		t.Errorf("table:\n%s\nwant it to start with:\n%s", got, want)
	}
	if !strings.Contains(got, "10000 idle keep-alive client connections") || !strings.Contains(holdReport(tab, "ws", 1000), "1000 WebSockets") {
		t.Errorf("legend:\n%s", got)
	}
}
