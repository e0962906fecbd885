package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// swap is one routing table an edge put in force.
type swap struct {
	At     time.Time // when the table was in force, by the edge's clock
	Routes int
	// Endpoints and Bytes (received from the control plane so far) are
	// known for client edges only; -1 otherwise.
	Endpoints, Bytes int64
}

// edge is one edge process and the tables it reported.
type edge struct {
	p         *proc
	admin     string    // admin address of a real edge, "" for a client
	connectAt time.Time // when a client edge started connecting (its start line)

	mu    sync.Mutex // guards swaps
	swaps []swap
	grown chan struct{} // closed and replaced at each new swap
}

func newEdge() *edge { return &edge{grown: make(chan struct{})} }

// add records a swap and wakes the waiters.
func (e *edge) add(s swap) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swaps = append(e.swaps, s)
	close(e.grown)
	e.grown = make(chan struct{})
}

// count returns the number of swaps so far.
func (e *edge) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.swaps)
}

// waitSwap returns the first swap after the first n, waiting until deadline.
func (e *edge) waitSwap(n int, deadline time.Time) (swap, error) {
	for {
		e.mu.Lock()
		if len(e.swaps) > n {
			s := e.swaps[n]
			e.mu.Unlock()
			return s, nil
		}
		grown := e.grown
		e.mu.Unlock()
		if err := e.p.alive(); err != nil {
			return swap{}, err
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return swap{}, fmt.Errorf("scalerun: %s: no new table after %d", e.p.name, n)
		}
		select {
		case <-grown:
		case <-time.After(min(wait, 500*time.Millisecond)):
		}
	}
}

// readClient reads a scaleedge's stdout: start and update lines.
func (e *edge) readClient(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "start":
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			e.mu.Lock()
			e.connectAt = time.Unix(0, ns)
			e.mu.Unlock()
		case len(f) == 6 && f[0] == "update":
			var v [5]int64
			for i := range v {
				v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
			}
			e.add(swap{At: time.Unix(0, v[0]), Routes: int(v[2]), Endpoints: v[3], Bytes: v[4]})
		}
	}
}

// logLine is the part of a swarmgate log line the driver reads.
type logLine struct {
	TS     string `json:"ts"`
	Msg    string `json:"msg"`
	Routes int    `json:"routes"`
}

// readEdgeLog reads a real edge's JSON log (its stderr) for "routing table
// swapped" lines, and copies everything to w.
func (e *edge) readEdgeLog(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		fmt.Fprintf(w, "%s\n", line)
		var l logLine
		if json.Unmarshal(line, &l) != nil || l.Msg != "routing table swapped" {
			continue
		}
		at := time.Now()
		// zap's ISO 8601 times are in milliseconds; a table read later than
		// the log says is dated by the log.
		if ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS); err == nil && ts.Before(at) {
			at = ts
		}
		e.add(swap{At: at, Routes: l.Routes, Endpoints: -1, Bytes: -1})
	}
}
