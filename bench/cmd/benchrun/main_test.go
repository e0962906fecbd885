package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseOptionsDefaults(t *testing.T) {
	t.Parallel()
	o, err := parseOptions([]string{"-bin", "/b"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.check(2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.suites, defaultSuites) || !slices.Equal(o.proxies, allProxies) ||
		o.duration != 10*time.Second || o.warmup != 2*time.Second || o.rate != 2000 || o.conns != 64 ||
		o.bodyPath != "/" || o.tlsDuration != 5*time.Second || o.tlsConns != 16 ||
		!slices.Equal(o.tlsVersions, []string{"1.3", "1.2"}) || o.l4Bytes != "2G" || o.l4Duration != 10*time.Second ||
		o.l4Conns != 1 || o.slowConns != 1000 || o.slowDuration != 60*time.Second || o.proxyCPU != 0 || o.loadCPU != 1 || o.backendPort != 19000 || o.proxyPort != 19001 {
		t.Errorf("defaults are not run.sh's: %+v", o)
	}
	// The default run: HTTP (2+2*10+5) s for direct and 4 proxies, bodies
	// the same for 1k and 64k (small is the HTTP suite's), close (2+10+5) s
	// for 5, TLS (5+1) s for 2 modes of 2 versions on 4 targets, HTTPS
	// (5+1) s for 3 protocols and h2load on 4 targets, L4 (10+2) s for 5,
	// idle and ws 15 s for 4 proxies each.
	if got := o.measuringSeconds(); got != 27*5+27*5*2+17*5+6*2*2*4+6*4*4+12*5+15*4*2 {
		t.Errorf("measuringSeconds = %d", got)
	}
	// The slow suite: (60+4) s for 3 attacks on 3 targets (not stdproxy).
	o.suites = []string{"slow"}
	if got := o.measuringSeconds(); got != 64*3*3 {
		t.Errorf("measuringSeconds of the slow suite = %d", got)
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		check   func(options) bool
		wantErr string // substring; "" for no error
	}{
		{"suites with commas", []string{"-suites", "tls,l4"}, func(o options) bool { return slices.Equal(o.suites, []string{"tls", "l4"}) }, ""},
		{"suites with spaces", []string{"-suites", "l4 http"}, func(o options) bool { return slices.Equal(o.suites, []string{"l4", "http"}) }, ""},
		{"proxies in order", []string{"-proxies", "nginx swarmgate"}, func(o options) bool { return slices.Equal(o.proxies, []string{"nginx", "swarmgate"}) }, ""},
		{"seconds with s", []string{"-duration", "5s", "-warmup", "0"}, func(o options) bool { return o.duration == 5*time.Second && o.warmup == 0 }, ""},
		{"body 64k", []string{"-body", "64k"}, func(o options) bool { return o.bodyPath == "/64k" }, ""},
		{"body 1k", []string{"-body", "1k"}, func(o options) bool { return o.bodyPath == "/1k" }, ""},
		{"l4 bytes", []string{"-l4-bytes", "512M"}, func(o options) bool { return o.l4Bytes == "512M" }, ""},
		{"slow suite", []string{"-suites", "slow", "-slow-conns", "2000", "-slow-duration", "30s"}, func(o options) bool {
			return slices.Equal(o.suites, []string{"slow"}) && o.slowConns == 2000 && o.slowDuration == 30*time.Second
		}, ""},
		{"TLS 1.3 only", []string{"-tls-versions", "1.3"}, func(o options) bool { return slices.Equal(o.tlsVersions, []string{"1.3"}) }, ""},
		{"unknown suite", []string{"-suites", "http,udp"}, nil, `unknown suite "udp"`},
		{"no suite", []string{"-suites", ","}, nil, "-suites: none given"},
		{"unknown proxy", []string{"-proxies", "envoy"}, nil, `unknown proxy "envoy"`},
		{"bad body", []string{"-body", "2k"}, nil, "-body must be small, 1k or 64k"},
		{"duration 0", []string{"-duration", "0"}, nil, "-duration (seconds) must be 1..120"},
		{"duration too long", []string{"-duration", "121"}, nil, "-duration (seconds) must be 1..120"},
		{"duration not a number", []string{"-duration", "ten"}, nil, "-duration: must be a whole number"},
		{"warmup too long", []string{"-warmup", "31"}, nil, "-warmup (seconds) must be 0..30"},
		{"rate 0", []string{"-rate", "0"}, nil, "-rate must be 1..100000"},
		{"conns", []string{"-conns", "5000"}, nil, "-conns must be 1..4096"},
		{"tls version", []string{"-tls-versions", "1.1"}, nil, `1.3 and/or 1.2, got "1.1"`},
		{"tls duration", []string{"-tls-duration", "61"}, nil, "-tls-duration (seconds) must be 1..60"},
		{"l4 conns", []string{"-l4-conns", "65"}, nil, "-l4-conns must be 1..64"},
		{"l4 bytes", []string{"-l4-bytes", "2T"}, nil, "-l4-bytes must look like"},
		{"l4 bytes zero", []string{"-l4-bytes", "0"}, nil, "-l4-bytes must look like"},
		{"slow conns", []string{"-slow-conns", "2001"}, nil, "-slow-conns must be 1..2000"},
		{"slow duration", []string{"-slow-duration", "5"}, nil, "-slow-duration (seconds) must be 10..600"},
		{"same core", []string{"-load-cpu", "0"}, nil, "must differ"},
		{"no such core", []string{"-load-cpu", "2"}, nil, "this machine has 2 cores"},
		{"no bin", []string{"-bin", ""}, nil, "-bin is required"},
		{"argument", []string{"http"}, nil, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(append([]string{"-bin", "/b"}, tt.args...), io.Discard)
			if err == nil {
				err = o.check(2)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			case tt.check != nil && !tt.check(o):
				t.Errorf("options %+v", o)
			}
		})
	}
}

func TestWithoutProxyEnv(t *testing.T) {
	t.Parallel()
	got := withoutProxyEnv([]string{"PATH=/bin", "http_proxy=http://p:3128", "HTTPS_PROXY=x", "ALL_PROXY=y", "NO_PROXY=z", "HOME=/root"})
	want := []string{"PATH=/bin", "NO_PROXY=z", "HOME=/root"}
	if !slices.Equal(got, want) {
		t.Errorf("withoutProxyEnv = %q, want %q", got, want)
	}
}

func TestShellJoin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"wrk", "-t1", "-H", "Host: bench.local", "http://127.0.0.1:19001/"}, "wrk -t1 -H 'Host: bench.local' http://127.0.0.1:19001/"},
		{[]string{"edge", "--admin", ""}, "edge --admin ''"},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
	}
	for _, tt := range tests {
		if got := shellJoin(tt.argv); got != tt.want {
			t.Errorf("shellJoin(%q) = %s, want %s", tt.argv, got, tt.want)
		}
	}
}
