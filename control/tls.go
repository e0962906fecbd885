package control

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ServerTLSConfig loads the stream listener's certificate and key and, when
// caFile is set, requires every edge to present a certificate signed by a
// CA in it (mutual TLS). TLS 1.2 is the minimum; HTTP/2 is offered first.
func ServerTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("control: tls: certificate and key are both required")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("control: tls: %w", err)
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if caFile != "" {
		if conf.ClientCAs, err = loadPool(caFile); err != nil {
			return nil, fmt.Errorf("control: tls: client CA: %w", err)
		}
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// ClientTLSConfig is the edge's side: caFile (the CA that signed the
// control plane's certificate; empty: the system roots) and, for mutual
// TLS, the edge's certificate and key.
func ClientTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("control: tls: client certificate and key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("control: tls: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("control: tls: CA: %w", err)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}
