// pulumi-resource-command runs tomcat-cd's `command:remote:Command` resources over SSH.
//
// Pulumi's own command provider (github.com/pulumi/pulumi-command/provider) is a Go module the
// module proxy reachable from these machines refuses, while the engine's provider protocol
// (sdk/v3) and golang.org/x/crypto/ssh are served. This provider implements the part of
// remote.Command that tomcat-cd's Python program uses, with upstream's input and output names,
// so the program does not know which provider runs it:
//
//	connection  host, port, user, privateKey, hostKey, dialErrorLimit, perDialTimeout
//	create, update, delete, stdin, triggers, logging, environment, addPreviousOutputInEnv
//	stdout, stderr (outputs)
//
// Semantics follow upstream's documentation: `update` runs on a change when set (otherwise a
// change replaces the resource and runs `create` again); `delete` runs when the resource goes;
// a command failing fails the step. Unsupported inputs (password, proxy, agent) are refused.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is set at build time by scripts/install-pulumi: the Python SDK's version, so the
// engine finds this plugin where pulumi_command asks for it.
var version = "0.0.0-dev"

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &commandProvider{host: host}, nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-command: %v\n", err)
		os.Exit(1)
	}
}
