package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"
)

type connection struct {
	host, user     string
	port           int
	config         *ssh.ClientConfig
	dialErrorLimit int
}

func connectionOf(inputs resource.PropertyMap) (*connection, error) {
	value := reveal(inputs["connection"])
	if !value.IsObject() {
		return nil, errors.New("connection is required")
	}
	props := value.ObjectValue()
	conn := &connection{host: text(props, "host"), user: text(props, "user"), port: 22, dialErrorLimit: 10}
	if conn.user == "" {
		conn.user = "root"
	}
	if port := reveal(props["port"]); port.IsNumber() {
		conn.port = int(port.NumberValue())
	}
	if limit := reveal(props["dialErrorLimit"]); limit.IsNumber() {
		conn.dialErrorLimit = int(limit.NumberValue())
	}
	timeout := 15 * time.Second
	if seconds := reveal(props["perDialTimeout"]); seconds.IsNumber() && seconds.NumberValue() > 0 {
		timeout = time.Duration(seconds.NumberValue()) * time.Second
	}
	signer, err := ssh.ParsePrivateKey([]byte(text(props, "privateKey")))
	if err != nil {
		// The key itself never goes into a message.
		return nil, fmt.Errorf("connection.privateKey for %s: not a private key ssh can read: %v", conn.host, err)
	}
	hostKeyCheck := ssh.InsecureIgnoreHostKey() // upstream's behaviour without hostKey
	if hostKey := text(props, "hostKey"); hostKey != "" {
		expected, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
		if err != nil {
			return nil, fmt.Errorf("connection.hostKey for %s: %v", conn.host, err)
		}
		hostKeyCheck = ssh.FixedHostKey(expected)
	}
	conn.config = &ssh.ClientConfig{
		User: conn.user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeyCheck, Timeout: timeout,
	}
	return conn, nil
}

// dial retries like upstream: a host that is still booting answers after a few tries.
func (c *connection) dial(ctx context.Context) (*ssh.Client, error) {
	address := net.JoinHostPort(c.host, strconv.Itoa(c.port))
	var lastErr error
	for attempt := 1; c.dialErrorLimit < 0 || attempt <= c.dialErrorLimit; attempt++ {
		client, err := ssh.Dial("tcp", address, c.config)
		if err == nil {
			return client, nil
		}
		lastErr = err
		if strings.Contains(err.Error(), "unable to authenticate") || strings.Contains(err.Error(), "host key mismatch") {
			break // retrying cannot fix these
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
	return nil, fmt.Errorf("connecting to %s as %s: %w", address, c.user, lastErr)
}

func (c *connection) run(ctx context.Context, command, stdin string, env map[string]string) (string, string, error) {
	client, err := c.dial(ctx)
	if err != nil {
		return "", "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", "", err
	}
	defer session.Close()
	for name, value := range env {
		if err := session.Setenv(name, value); err != nil {
			return "", "", fmt.Errorf("the SSH server refused the environment variable %s (AcceptEnv): %w", name, err)
		}
	}
	var stdout, stderr bytes.Buffer
	session.Stdout, session.Stderr = &stdout, &stderr
	session.Stdin = strings.NewReader(stdin)
	done := make(chan error, 1)
	go func() { done <- session.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGTERM)
		err = ctx.Err()
	}
	return stdout.String(), stderr.String(), err
}
