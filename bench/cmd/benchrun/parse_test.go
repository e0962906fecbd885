package main

import "testing"

// wrkOK is wrk 4.1.0's output of a clean run (from a smoke run of this
// benchmark).
const wrkOK = `Running 1s test @ http://127.0.0.1:19001/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.80ms  406.70us   6.88ms   85.90%
    Req/Sec    35.05k     2.45k   40.13k    70.00%
  Latency Distribution
     50%    1.80ms
     75%    1.96ms
     90%    2.10ms
     99%    3.48ms
  34879 requests in 1.00s, 5.36MB read
Requests/sec:  34773.08
Transfer/sec:      5.34MB
`

// wrkErrors has the two lines wrk prints only when they are not zero.
const wrkErrors = `Running 10s test @ http://127.0.0.1:19001/
  1 threads and 64 connections
  428945 requests in 10.00s, 52.37MB read
  Socket errors: connect 0, read 12, write 1, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  42894.49
Transfer/sec:      5.24MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want wrkResult
	}{
		{"clean", wrkOK, wrkResult{requests: 34879, rps: 34773.08, sockets: "none"}},
		{"errors", wrkErrors, wrkResult{requests: 428945, rps: 42894.49, non2xx: 5,
			sockets: "connect 0, read 12, write 1, timeout 3", sockErrs: 16}},
		{"failed", "unable to connect to 127.0.0.1:19001 Connection refused\n", wrkResult{sockets: "none"}},
		{"empty", "", wrkResult{sockets: "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseWrk(tt.out); got != tt.want {
				t.Errorf("parseWrk = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseVegeta(t *testing.T) {
	tests := []struct {
		name    string
		report  string
		want    vegetaResult
		wantErr bool
	}{
		{
			name: "all 200",
			report: `{"latencies":{"total":60365000,"mean":301824,"50th":284528,"90th":417078,"95th":455680,"99th":1050000,"max":1530000,"min":137143},` +
				`"bytes_in":{"total":2600,"mean":13},"bytes_out":{"total":0,"mean":0},"requests":200,"rate":200.97,"throughput":200.88,` +
				`"success":1,"status_codes":{"200":200},"errors":[]}`,
			want: vegetaResult{requests: 200, ok: 200, p50us: 284.528, p99us: 1050},
		},
		{
			name: "refused (a real report)",
			report: `{"latencies":{"total":1913519,"mean":478379,"50th":430632,"90th":639152,"95th":639152,"99th":639152,"max":639152,"min":413102},` +
				`"requests":4,"rate":26.69,"throughput":0,"success":0,"status_codes":{"0":4},` +
				`"errors":["Get \"http://127.0.0.1:19050/nope\": dial tcp 0.0.0.0:0-\u003e127.0.0.1:19050: connect: connection refused"]}`,
			want: vegetaResult{requests: 4, ok: 0, p50us: 430.632, p99us: 639.152,
				errors: `Get "http://127.0.0.1:19050/nope": dial tcp 0.0.0.0:0->127.0.0.1:19050: connect: connection refused`},
		},
		{
			name:   "mixed, errors null",
			report: `{"latencies":{"50th":1000,"99th":2000},"requests":10,"status_codes":{"200":7,"502":3},"errors":null}`,
			want:   vegetaResult{requests: 10, ok: 7, p50us: 1, p99us: 2},
		},
		{
			name:   "two errors",
			report: `{"requests":2,"status_codes":{"0":2},"errors":["a","b"]}`,
			want:   vegetaResult{requests: 2, errors: "a; b"},
		},
		{name: "not JSON", report: "Requests [total] 200", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVegeta([]byte(tt.report))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseVegeta = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseKeyValues(t *testing.T) {
	tests := []struct {
		name  string
		out   string
		key   string
		str   string
		int   int64
		float float64
	}{
		{"tlsload", "handshakes=2193 resumed=0 errors=0 elapsed=1.002 rate=2188.6 p50us=4299 p99us=9262\n", "rate", "2188.6", 0, 2188.6},
		{"tlsload int", "handshakes=2193 resumed=0 errors=0 elapsed=1.002 rate=2188.6 p50us=4299 p99us=9262\n", "p99us", "9262", 9262, 9262},
		{"tlsload error", "handshakes=5 resumed=0 errors=2 first_error=handshake:_remote_error\n", "first_error", "handshake:_remote_error", 0, 0},
		{"l4load", "bytes=2147483648 elapsed=0.884 gbps=19.435 segments=32\n", "bytes", "2147483648", 2147483648, 2147483648},
		{"last wins", "x=1\nx=2\n", "x", "2", 2, 2},
		{"missing", "l4load: source: dial: connection refused\n", "bytes", "", 0, 0},
		{"value with =", "k=a=b", "k", "a=b", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := parseKeyValues(tt.out)
			if kv[tt.key] != tt.str || kv.int(tt.key) != tt.int || kv.float(tt.key) != tt.float {
				t.Errorf("%s = %q, int %d, float %v; want %q, %d, %v", tt.key, kv[tt.key], kv.int(tt.key), kv.float(tt.key), tt.str, tt.int, tt.float)
			}
		})
	}
}

func TestLastLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\nb\n", "b"},
		{"a\nb", "b"},
		{"tlsload: -cert: open x: no such file\n\n", "tlsload: -cert: open x: no such file"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := lastLine(tt.in); got != tt.want {
			t.Errorf("lastLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// slowCSV is slowhttptest 1.8.2's -g CSV of a slowloris run of 20
// connections that the target closed after 4 s, with 3 s in which its probe
// got no answer, and a last row cut short (from a run against a stalled
// listener).
const slowCSV = `Seconds,Closed,Pending,Connected,Service Available
0,0,1,0,20
1,0,0,20,20
2,0,0,20,0
3,0,0,20,0
4,12,0,8,0
5,20,0,0,20
6,20,0
`

// slowOut is the end of slowhttptest's output, colors removed.
const slowOut = `slow HTTP test status on 5th second:

initializing:        0
pending:             0
connected:           0
error:               0
closed:              20
service available:   YES
Thu Dec  3 06:43:56 2026:
Test ended on 6th second
Exit status: No open connections left
CSV report saved to /tmp/x.csv
HTML report saved to /tmp/x.html
`

func TestParseSlowCSV(t *testing.T) {
	tests := []struct {
		name string
		csv  string
		want slowResult
	}{
		{"closed by the target", slowCSV, slowResult{samples: 6, unavailable: 3, connected: 20, closed: 20}},
		{"held all along", "Seconds,Closed,Pending,Connected,Service Available\n0,0,1,0,1000\n1,0,0,1000,1000\n2,0,0,1000,1000\n",
			slowResult{samples: 3, connected: 1000}},
		{"CRLF", "Seconds,Closed,Pending,Connected,Service Available\r\n0,0,1,0,0\r\n", slowResult{samples: 1, unavailable: 1}},
		{"not numbers", "a,b,c,d,e\n1,2,3,4,-5\n", slowResult{}},
		{"empty", "", slowResult{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseSlowCSV(tt.csv); got != tt.want {
				t.Errorf("parseSlowCSV = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSlowExitStatus(t *testing.T) {
	tests := []struct{ out, want string }{
		{slowOut, "No open connections left"},
		{stripANSI("\x1b[0m\x1b[0;36m\nTest ended on 61st second\nExit status:\x1b[1;36m Hit test time limit\n\x1b[0m"), "Hit test time limit"},
		{"Error in getaddrinfo: Name or service not known\n", ""},
	}
	for _, tt := range tests {
		if got := slowExitStatus(tt.out); got != tt.want {
			t.Errorf("slowExitStatus(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
}

// netTCP is /proc/net/tcp with the backend on 127.0.0.1:19000 (4A38): a
// listener, two connections from the proxy (one ESTABLISHED, one in
// TIME_WAIT), the backend's end of the first, and a client of the proxy
// (19001, 4A39).
const netTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4A38 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2185061 1 00000000bf09ec06 100 0 0 10 0
   1: 0100007F:9C40 0100007F:4A38 01 00000000:00000000 00:00000000 00000000     0        0 2185070 1 00000000bf09ec07 20 4 30 10 -1
   2: 0100007F:9C42 0100007F:4A38 06 00000000:00000000 03:00000F9E 00000000     0        0 0 3 00000000bf09ec08
   3: 0100007F:4A38 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2185071 1 00000000bf09ec09 20 4 30 10 -1
   4: 0100007F:D431 0100007F:4A39 01 00000000:00000000 00:00000000 00000000     0        0 2185080 1 00000000bf09ec0a 20 4 30 10 -1
`

// netTCP6 is /proc/net/tcp6 with one connection to [::ffff:127.0.0.1]:19000.
const netTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:46A0 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2212470 1 00000000d61d2a7f 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:9C44 0000000000000000FFFF00000100007F:4A38 01 00000000:00000000 00:00000000 00000000     0        0 2212471 1 00000000d61d2a80 20 4 30 10 -1
`

func TestCountEstablished(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		port    int
		want    int
		wantErr bool
	}{
		{"backend", netTCP, 19000, 1, false},
		{"proxy port", netTCP, 19001, 1, false},
		{"none", netTCP, 8080, 0, false},
		{"tcp6", netTCP6, 19000, 1, false},
		{"header only", "  sl  local_address rem_address   st\n", 19000, 0, false},
		{"empty", "", 19000, 0, false},
		{"short line", "sl local rem st\n   0: 0100007F:4A38\n", 19000, 0, true},
		{"bad port", "sl local rem st\n   0: 0100007F:4A38 0100007F:ZZZZ 01\n", 19000, 0, true},
		{"no port", "sl local rem st\n   0: 0100007F:4A38 0100007F 01\n", 19000, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := countEstablished(tt.text, tt.port)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("countEstablished = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"process", "Name:\tnginx\nVmHWM:\t    2076 kB\nVmRSS:\t    2076 kB\nRssAnon:\t     156 kB\n", 2076, false},
		{"kernel thread", "Name:\tkthreadd\nState:\tS (sleeping)\n", 0, false},
		{"no unit", "VmRSS:\t2076\n", 0, true},
		{"not a number", "VmRSS:\tmany kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS(tt.status)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseVmRSS = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestStripANSI(t *testing.T) {
	in := "\x1b[H\x1b[2J\x1b[0;34mtest type:\x1b[1;34m   SLOW HEADERS\n\x1b[0m"
	if got, want := stripANSI(in), "test type:   SLOW HEADERS\n"; got != want {
		t.Errorf("stripANSI = %q, want %q", got, want)
	}
}

func TestParseH2load(t *testing.T) {
	t.Parallel()
	out := `starting benchmark...
spawning thread #0: 4 total client(s). Timing-based test with 0s of warm-up time and 5s of main duration for measurements.
Application protocol: h2

finished in 5.00s, 24567.80 req/s, 1.02MB/s
requests: 122839 total, 122967 started, 122839 done, 122830 succeeded, 9 failed, 0 errored, 0 timeout
status codes: 122830 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 5.12MB (5368709) total, 1.00MB (1048576) headers (space savings 95.12%), 1.53MB (1600000) data
                     min         max         mean         sd        +/- sd
time for request:      412us     21.33ms      5.19ms      1.02ms    81.23%
`
	got := parseH2load(out)
	want := h2loadResult{succeeded: 122830, failed: 9, rate: 24567.80, protocol: "h2", mean: "5.19ms"}
	if got != want {
		t.Fatalf("parseH2load = %+v, want %+v", got, want)
	}
	if (parseH2load("h2load: connection refused") != h2loadResult{}) {
		t.Error("a failed run parsed as results")
	}
}
