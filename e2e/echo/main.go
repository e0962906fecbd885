// Command echo is the end-to-end suite's test service: it answers every
// request with who it is (task host name, SERVICE variable) and what it saw,
// as JSON; echoes WebSocket messages on /ws; waits ?ms= milliseconds on
// /slow. With --tls-cert and --tls-key it serves HTTPS instead (for SNI
// passthrough). On SIGTERM it stops accepting and finishes what is in flight,
// as a well-behaved service does.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	addr := flag.String("listen", ":8000", "listen address")
	cert := flag.String("tls-cert", "", "serve HTTPS with this certificate (PEM)")
	key := flag.String("tls-key", "", "key for --tls-cert")
	grace := flag.Duration("grace", 10*time.Second, "on SIGTERM, how long requests in flight may take")
	failEvery := flag.Int("fail-every", 0, "answer 500 to the first of every N requests to / (a bad release); 0: never (default $FAIL_EVERY)")
	flag.Parse()
	if v, err := strconv.Atoi(os.Getenv("FAIL_EVERY")); err == nil && *failEvery == 0 {
		*failEvery = v
	}
	host, _ := os.Hostname()
	service := os.Getenv("SERVICE")
	var served atomic.Int64
	answer := func(w http.ResponseWriter, r *http.Request) {
		if n := served.Add(1); *failEvery > 0 && n%int64(*failEvery) == 1%int64(*failEvery) {
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"service": service,
			"task":    host,
			"method":  r.Method,
			"host":    r.Host,
			"path":    r.URL.Path,
			"xff":     r.Header.Get("X-Forwarded-For"),
			"user":    r.Header.Get("Remote-User"),
			"auth":    r.Header.Get("Authorization"),
			"tls":     strconv.FormatBool(r.TLS != nil),
		})
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/", answer)
	// /verify is a forward-auth service: a request carrying the token
	// "X-Token: letmein" is let through as user "tester"; anything else is
	// sent to a login page.
	mux.HandleFunc("/verify", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Token") == "letmein" {
			w.Header().Set("Remote-User", "tester")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Location", "https://login.e2e.test/?next="+r.Header.Get("X-Forwarded-Uri"))
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		answer(w, r)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte(host+": "), msg...)); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		if *cert != "" {
			errc <- srv.ListenAndServeTLS(*cert, *key)
		} else {
			errc <- srv.ListenAndServe()
		}
	}()
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	srv.Shutdown(sctx)
}
