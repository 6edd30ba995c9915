{{/*
Names and labels shared by every template. Object names are DNS-1123 labels of at most 63
characters; the component suffixes (-controller, -node-agent, -leader-election, -metrics) fit
because the prefix is cut at 40.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "nfv-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: <release>-<chart>, the release name alone if it contains the chart name, or fullnameOverride. */}}
{{- define "nfv-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart label value: name-version. */}}
{{- define "nfv-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "nfv-operator.labels" -}}
helm.sh/chart: {{ include "nfv-operator.chart" . }}
app.kubernetes.io/name: {{ include "nfv-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nfv-operator
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "controller"). */}}
{{- define "nfv-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nfv-operator.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's objects; call with (dict "root" $ "component" "controller"). */}}
{{- define "nfv-operator.componentLabels" -}}
{{ include "nfv-operator.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Object names. */}}
{{- define "nfv-operator.controllerName" -}}
{{- printf "%s-controller" (include "nfv-operator.fullname" .) }}
{{- end }}

{{- define "nfv-operator.agentName" -}}
{{- printf "%s-node-agent" (include "nfv-operator.fullname" .) }}
{{- end }}

{{- define "nfv-operator.controllerServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nfv-operator.controllerName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nfv-operator.agentServiceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "nfv-operator.agentName" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- required "agent.serviceAccount.name is required when agent.serviceAccount.create is false" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Lease the controller replicas compete for; fixed in src/operator.ts. */}}
{{- define "nfv-operator.leaseName" -}}
nfv-operator-leader
{{- end }}

{{/* repository:tag of an image block. */}}
{{- define "nfv-operator.image" -}}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
