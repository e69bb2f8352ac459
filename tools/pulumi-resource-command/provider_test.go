package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

const urn = "urn:pulumi:s::p::command:remote:Command::step"

func props(t *testing.T, values map[string]interface{}) *structpb.Struct {
	t.Helper()
	marshalled, err := plugin.MarshalProperties(resource.NewPropertyMapFromMap(values), marshal)
	if err != nil {
		t.Fatal(err)
	}
	return marshalled
}

func inputs(create, update, stdin string) map[string]interface{} {
	values := map[string]interface{}{
		"connection": map[string]interface{}{"host": "10.0.0.1", "user": "root", "privateKey": "k"},
		"create":     create,
		"stdin":      stdin,
	}
	if update != "" {
		values["update"] = update
	}
	return values
}

func diff(t *testing.T, olds, news map[string]interface{}) *pulumirpc.DiffResponse {
	t.Helper()
	response, err := (&commandProvider{}).Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, OldInputs: props(t, olds), News: props(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	return response
}

func TestUnchangedInputsAreNoChange(t *testing.T) {
	same := inputs("bash -s", "bash -s", "echo one")
	if got := diff(t, same, same).GetChanges(); got != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("changes = %v, want none", got)
	}
}

func TestAChangeRunsUpdateWhenThereIsOne(t *testing.T) {
	response := diff(t, inputs("bash -s", "bash -s", "echo one"), inputs("bash -s", "bash -s", "echo two"))
	if response.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(response.GetReplaces()) != 0 {
		t.Fatalf("got %v replaces %v, want an in-place update", response.GetChanges(), response.GetReplaces())
	}
	if diffs := response.GetDiffs(); len(diffs) != 1 || diffs[0] != "stdin" {
		t.Fatalf("diffs = %v, want [stdin]", diffs)
	}
}

func TestAChangeReplacesWithoutUpdate(t *testing.T) {
	response := diff(t, inputs("bash -s", "", "echo one"), inputs("bash -s", "", "echo two"))
	if replaces := response.GetReplaces(); len(replaces) != 1 || replaces[0] != "stdin" {
		t.Fatalf("replaces = %v, want [stdin] (upstream: no update command means replace)", replaces)
	}
}

func TestCheckRefusesWhatItDoesNotImplement(t *testing.T) {
	values := inputs("bash -s", "", "")
	values["connection"].(map[string]interface{})["password"] = "p"
	response, err := (&commandProvider{}).Check(context.Background(), &pulumirpc.CheckRequest{
		Urn: urn, News: props(t, values)})
	if err != nil {
		t.Fatal(err)
	}
	failures := response.GetFailures()
	if len(failures) != 1 || failures[0].GetProperty() != "connection.password" {
		t.Fatalf("failures = %v, want connection.password refused", failures)
	}
}

func TestCheckRefusesAnotherResourceType(t *testing.T) {
	_, err := (&commandProvider{}).Check(context.Background(), &pulumirpc.CheckRequest{
		Urn: "urn:pulumi:s::p::command:local:Command::x", News: props(t, inputs("true", "", ""))})
	if err == nil {
		t.Fatal("command:local:Command must be refused")
	}
}

func TestPreviewRunsNothingAndLeavesOutputsUnknown(t *testing.T) {
	response, err := (&commandProvider{}).Create(context.Background(), &pulumirpc.CreateRequest{
		Urn: urn, Properties: props(t, inputs("exit 1", "", "")), Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	outputs, err := plugin.UnmarshalProperties(response.GetProperties(), marshal)
	if err != nil {
		t.Fatal(err)
	}
	if !outputs["stdout"].IsComputed() {
		t.Fatalf("stdout = %v, want unknown in a preview", outputs["stdout"])
	}
}

func TestABadPrivateKeyIsNamedButNotShown(t *testing.T) {
	values := inputs("true", "", "")
	values["connection"].(map[string]interface{})["privateKey"] = "not-a-key-SECRET"
	_, err := connectionOf(resource.NewPropertyMapFromMap(values))
	if err == nil {
		t.Fatal("want an error")
	}
	if msg := err.Error(); !strings.Contains(msg, "connection.privateKey for 10.0.0.1") || strings.Contains(msg, "SECRET") {
		t.Fatalf("error %q must name the field and never show the key", msg)
	}
}
