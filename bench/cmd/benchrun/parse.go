package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// wrkResult is what the HTTP table takes from wrk's output.
type wrkResult struct {
	requests int64   // "N requests in 10.00s"
	rps      float64 // "Requests/sec:"
	non2xx   int64   // "Non-2xx or 3xx responses:", printed only when nonzero
	sockets  string  // "connect 0, read 0, write 0, timeout 0", or "none"
	sockErrs int64   // the sum of those counts
}

// parseWrk reads wrk's text output. Missing lines leave zeros: a wrk that
// failed reports no requests.
func parseWrk(out string) wrkResult {
	r := wrkResult{sockets: "none"}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		f := strings.Fields(line)
		switch {
		case strings.Contains(line, " requests in ") && r.requests == 0:
			r.requests, _ = strconv.ParseInt(f[0], 10, 64)
		case strings.HasPrefix(line, "Requests/sec:") && len(f) > 1:
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			r.non2xx, _ = strconv.ParseInt(f[len(f)-1], 10, 64)
		case strings.HasPrefix(line, "Socket errors:"):
			r.sockets = strings.TrimSpace(strings.TrimPrefix(line, "Socket errors:"))
			for kind := range strings.SplitSeq(r.sockets, ",") {
				if kf := strings.Fields(kind); len(kf) == 2 {
					n, _ := strconv.ParseInt(kf[1], 10, 64)
					r.sockErrs += n
				}
			}
		}
	}
	return r
}

// vegetaResult is what the HTTP table takes from `vegeta report -type=json`.
type vegetaResult struct {
	requests     int64
	ok           int64   // answered 200
	p50us, p99us float64 // latency, µs
	errors       string  // vegeta's distinct errors, "; "-separated
}

// parseVegeta reads the JSON report of `vegeta report -type=json`.
func parseVegeta(report []byte) (vegetaResult, error) {
	var m struct {
		Requests  int64 `json:"requests"`
		Latencies struct {
			P50 int64 `json:"50th"` // ns
			P99 int64 `json:"99th"`
		} `json:"latencies"`
		StatusCodes map[string]int64 `json:"status_codes"`
		Errors      []string         `json:"errors"`
	}
	if err := json.Unmarshal(report, &m); err != nil {
		return vegetaResult{}, fmt.Errorf("vegeta report: %w", err)
	}
	return vegetaResult{
		requests: m.Requests,
		ok:       m.StatusCodes["200"],
		p50us:    float64(m.Latencies.P50) / 1e3,
		p99us:    float64(m.Latencies.P99) / 1e3,
		errors:   strings.Join(m.Errors, "; "),
	}, nil
}

// keyValues is the key=value pairs tlsload and l4load print on one line.
type keyValues map[string]string

// parseKeyValues reads every key=value word of out; a key that appears
// more than once keeps its last value.
func parseKeyValues(out string) keyValues {
	kv := keyValues{}
	for _, w := range strings.Fields(out) {
		if k, v, ok := strings.Cut(w, "="); ok && k != "" {
			kv[k] = v
		}
	}
	return kv
}

// int is the value of k as a whole number, 0 if it is missing or is not one.
func (kv keyValues) int(k string) int64 {
	n, _ := strconv.ParseInt(kv[k], 10, 64)
	return n
}

// float is the value of k as a number, 0 if it is missing or is not one.
func (kv keyValues) float(k string) float64 {
	f, _ := strconv.ParseFloat(kv[k], 64)
	return f
}

// lastLine is the last line of out that is not blank: a tool's error.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// slowResult is what the slow table takes from slowhttptest's -g output.
type slowResult struct {
	samples     int    // rows of the CSV: one a second
	unavailable int    // rows whose "Service Available" is 0
	connected   int    // the most connections slowhttptest had open at once
	closed      int    // connections closed by the end (by the target, or refused)
	exit        string // its "Exit status:" line, such as "Hit test time limit"
}

// parseSlowCSV reads the CSV file slowhttptest -g writes, one row a second:
//
//	Seconds,Closed,Pending,Connected,Service Available
//	0,0,1,0,1000
//
// "Service Available" is the number of connections while its last probe
// got an answer in time, 0 after a probe that did not. Rows that are not
// five numbers (the header, a row cut short when it was killed) are skipped.
func parseSlowCSV(csv string) slowResult {
	var r slowResult
	for line := range strings.Lines(csv) {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) != 5 {
			continue
		}
		var v [5]int
		ok := true
		for i, s := range f {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				ok = false
				break
			}
			v[i] = n
		}
		if !ok {
			continue
		}
		r.samples++
		if v[4] == 0 {
			r.unavailable++
		}
		r.connected = max(r.connected, v[3])
		r.closed = v[1]
	}
	return r
}

// slowExitStatus is the reason slowhttptest's output gives for the end of
// its test (colors removed), "" if it has none.
func slowExitStatus(out string) string {
	status := ""
	for line := range strings.Lines(out) {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "Exit status:"); ok {
			status = strings.TrimSpace(s)
		}
	}
	return status
}
