package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const commandType = "command:remote:Command"

// Inputs whose change is a change of the resource; `update` decides between update and replace.
var diffedInputs = []string{"connection", "create", "update", "delete", "stdin", "environment", "triggers",
	"logging", "addPreviousOutputInEnv"}

type commandProvider struct {
	pulumirpc.UnimplementedResourceProviderServer
	host *provider.HostClient
}

var marshal = plugin.MarshalOptions{KeepSecrets: true, KeepUnknowns: true, SkipNulls: true}

func (p *commandProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (p *commandProvider) Handshake(context.Context, *pulumirpc.ProviderHandshakeRequest) (*pulumirpc.ProviderHandshakeResponse, error) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

func (p *commandProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"command","version":"` + version + `"}`}, nil
}

func (p *commandProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *commandProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *commandProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

func (p *commandProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), marshal)
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	for _, problem := range checkInputs(news) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: problem[0], Reason: problem[1]})
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

func (p *commandProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := plugin.UnmarshalProperties(req.GetOldInputs(), marshal)
	if err != nil {
		return nil, err
	}
	if len(olds) == 0 { // state written before old inputs were recorded
		if olds, err = plugin.UnmarshalProperties(req.GetOlds(), marshal); err != nil {
			return nil, err
		}
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), marshal)
	if err != nil {
		return nil, err
	}
	var changed, replaces []string
	hasUpdate := text(news, "update") != ""
	for _, key := range diffedInputs {
		name := resource.PropertyKey(key)
		if !olds[name].DeepEquals(news[name]) {
			changed = append(changed, key)
			if !hasUpdate {
				replaces = append(replaces, key)
			}
		}
	}
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: changed, Replaces: replaces}, nil
}

func (p *commandProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	inputs, err := plugin.UnmarshalProperties(req.GetProperties(), marshal)
	if err != nil {
		return nil, err
	}
	outputs, err := p.run(ctx, resource.URN(req.GetUrn()), inputs, "create", req.GetPreview())
	if err != nil {
		return nil, err
	}
	props, err := plugin.MarshalProperties(outputs, marshal)
	if err != nil {
		return nil, err
	}
	id, err := resource.NewUniqueHex("", 8, 0)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (p *commandProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	inputs, err := plugin.UnmarshalProperties(req.GetNews(), marshal)
	if err != nil {
		return nil, err
	}
	which := "update"
	if text(inputs, "update") == "" {
		which = "create"
	}
	outputs, err := p.run(ctx, resource.URN(req.GetUrn()), inputs, which, req.GetPreview())
	if err != nil {
		return nil, err
	}
	props, err := plugin.MarshalProperties(outputs, marshal)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	state, err := plugin.UnmarshalProperties(req.GetProperties(), marshal)
	if err != nil {
		return nil, err
	}
	if text(state, "delete") != "" {
		if _, err := p.run(ctx, resource.URN(req.GetUrn()), state, "delete", false); err != nil {
			return nil, err
		}
	}
	return &emptypb.Empty{}, nil
}

func (p *commandProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	// Nothing to read back from a command: what it printed is what the state holds.
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (p *commandProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// run runs one of create/update/delete and returns the resource's outputs: its inputs, with
// stdout and stderr (unknown in a preview, when nothing runs).
func (p *commandProvider) run(ctx context.Context, urn resource.URN, inputs resource.PropertyMap, which string,
	preview bool,
) (resource.PropertyMap, error) {
	outputs := inputs.Copy()
	if preview {
		outputs["stdout"] = resource.MakeComputed(resource.NewProperty(""))
		outputs["stderr"] = resource.MakeComputed(resource.NewProperty(""))
		return outputs, nil
	}
	conn, err := connectionOf(inputs)
	if err != nil {
		return nil, err
	}
	command := text(inputs, resource.PropertyKey(which))
	env := environmentOf(inputs)
	if which != "create" && boolean(inputs, "addPreviousOutputInEnv", true) {
		env["PULUMI_COMMAND_STDOUT"] = text(inputs, "stdout")
		env["PULUMI_COMMAND_STDERR"] = text(inputs, "stderr")
	}
	stdin := ""
	if which != "delete" {
		stdin = text(inputs, "stdin")
	}
	p.status(ctx, urn, fmt.Sprintf("running %s on %s@%s", which, conn.user, conn.host))
	stdout, stderr, err := conn.run(ctx, command, stdin, env)
	p.logOutput(ctx, urn, text(inputs, "logging"), stdout, stderr)
	if err != nil {
		return nil, status.Errorf(codes.Unknown, "%s on %s: %v%s", which, conn.host, err, tail(stderr))
	}
	outputs["stdout"] = resource.NewProperty(strings.TrimSuffix(stdout, "\n"))
	outputs["stderr"] = resource.NewProperty(strings.TrimSuffix(stderr, "\n"))
	return outputs, nil
}

func (p *commandProvider) status(ctx context.Context, urn resource.URN, msg string) {
	if p.host != nil {
		_ = p.host.LogStatus(ctx, diag.Info, urn, msg)
	}
}

// logOutput shows what the command printed, as upstream does, unless `logging` leaves it out
// (a step printing a secret sets logging to stderr).
func (p *commandProvider) logOutput(ctx context.Context, urn resource.URN, logging, stdout, stderr string) {
	if p.host == nil {
		return
	}
	if logging == "" {
		logging = "stdoutAndStderr"
	}
	if (logging == "stdout" || logging == "stdoutAndStderr") && strings.TrimSpace(stdout) != "" {
		_ = p.host.Log(ctx, diag.Info, urn, strings.TrimRight(stdout, "\n"))
	}
	if (logging == "stderr" || logging == "stdoutAndStderr") && strings.TrimSpace(stderr) != "" {
		_ = p.host.Log(ctx, diag.Info, urn, strings.TrimRight(stderr, "\n"))
	}
}

func tail(stderr string) string {
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	if strings.TrimSpace(strings.Join(lines, "")) == "" {
		return ""
	}
	return "\n" + strings.Join(lines, "\n")
}

func checkType(urn string) error {
	if t := string(resource.URN(urn).Type()); t != commandType {
		return status.Errorf(codes.InvalidArgument, "this command provider runs only %s, not %s "+
			"(tomcat-cd's own provider: see tools/pulumi-resource-command)", commandType, t)
	}
	return nil
}

func checkInputs(news resource.PropertyMap) [][2]string {
	var problems [][2]string
	conn := news["connection"]
	if conn.IsSecret() {
		conn = conn.SecretValue().Element
	}
	if !conn.IsObject() {
		return append(problems, [2]string{"connection", "is required: host, user and privateKey"})
	}
	var unsupported []string
	for key := range conn.ObjectValue() {
		switch key {
		case "host", "port", "user", "privateKey", "hostKey", "dialErrorLimit", "perDialTimeout":
		default:
			unsupported = append(unsupported, string(key))
		}
	}
	sort.Strings(unsupported)
	for _, key := range unsupported {
		problems = append(problems, [2]string{"connection." + key, "is not supported by tomcat-cd's command provider"})
	}
	if text(news, "create") == "" && !news["create"].ContainsUnknowns() {
		problems = append(problems, [2]string{"create", "is required"})
	}
	return problems
}

// text reads a string input, looking through secrets; unknown or absent reads as "".
func text(props resource.PropertyMap, key resource.PropertyKey) string {
	value := reveal(props[key])
	if value.IsString() {
		return value.StringValue()
	}
	return ""
}

func boolean(props resource.PropertyMap, key resource.PropertyKey, fallback bool) bool {
	value := reveal(props[key])
	if value.IsBool() {
		return value.BoolValue()
	}
	return fallback
}

func reveal(value resource.PropertyValue) resource.PropertyValue {
	for value.IsSecret() {
		value = value.SecretValue().Element
	}
	return value
}

func environmentOf(props resource.PropertyMap) map[string]string {
	env := map[string]string{}
	value := reveal(props["environment"])
	if value.IsObject() {
		for key, v := range value.ObjectValue() {
			if s := reveal(v); s.IsString() {
				env[string(key)] = s.StringValue()
			}
		}
	}
	return env
}
