package main

import (
	"reflect"
	"testing"
)

func TestConfigEnvOfAStackWithoutConfigIsEmptyJSON(t *testing.T) {
	got, err := configEnv(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PULUMI_CONFIG={}", "PULUMI_CONFIG_SECRET_KEYS=[]"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("configEnv(nil, nil) = %q, want %q", got, want)
	}
}

func TestConfigEnvKeepsValuesAndSecretKeys(t *testing.T) {
	got, err := configEnv(map[string]string{"tomcat-cd:harborHost": "h"}, []string{"tomcat-cd:harborPassword"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`PULUMI_CONFIG={"tomcat-cd:harborHost":"h"}`, `PULUMI_CONFIG_SECRET_KEYS=["tomcat-cd:harborPassword"]`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("configEnv = %q, want %q", got, want)
	}
}
