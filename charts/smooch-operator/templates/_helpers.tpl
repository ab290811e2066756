{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "smooch-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources (63 characters at most).
*/}}
{{- define "smooch-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "smooch-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels (stable across upgrades).
*/}}
{{- define "smooch-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smooch-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Standard labels of every resource.
*/}}
{{- define "smooch-operator.labels" -}}
helm.sh/chart: {{ include "smooch-operator.chart" . }}
{{ include "smooch-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: smooch-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Name of the ServiceAccount the operator runs as.
*/}}
{{- define "smooch-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smooch-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "smooch-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
"true" when the operator must elect a leader: more than one replica, or
asked for.
*/}}
{{- define "smooch-operator.leaderElect" -}}
{{- if or (gt (int .Values.replicas) 1) .Values.leaderElection.enabled }}true{{ else }}false{{ end }}
{{- end }}

{{/*
What the operator does to its own resources and to Secrets and Events, in
the namespaces it watches. Shared by the ClusterRole (all namespaces) and
the per-namespace Roles (watchNamespaces).
*/}}
{{- define "smooch-operator.rules" -}}
# The four kinds: watched; finalizers added and removed with a JSON patch.
- apiGroups: ["smooch-operator.io"]
  resources: [smoochapps, smoochkeys, smoochintegrations, smoochwebhooks]
  verbs: [get, list, watch, patch, update]
# Status is written with server-side apply (a patch) and never read back.
- apiGroups: ["smooch-operator.io"]
  resources: [smoochapps/status, smoochkeys/status, smoochintegrations/status, smoochwebhooks/status]
  verbs: [patch]
# Owner references with blockOwnerDeletion on the generated Secrets need
# this where the OwnerReferencesPermissionEnforcement admission plugin is on.
- apiGroups: ["smooch-operator.io"]
  resources: [smoochapps/finalizers, smoochkeys/finalizers, smoochintegrations/finalizers, smoochwebhooks/finalizers]
  verbs: [update]
# Generated Secrets are written; credential Secrets (app-maker keys,
# channel tokens) are read; every Secret's metadata is watched.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch, delete]
# Events about the resources (kube-rs publishes events.k8s.io/v1).
- apiGroups: ["events.k8s.io"]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
