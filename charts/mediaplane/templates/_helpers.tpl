{{/*
Names, labels and shared snippets (the `helm create` conventions).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "mediaplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified app name: the release name, suffixed with the chart name unless the
release name already contains it. Truncated to 63 characters (DNS label limit) with room
for the component suffixes below.
*/}}
{{- define "mediaplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart name and version, for the helm.sh/chart label. */}}
{{- define "mediaplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "mediaplane.labels" -}}
helm.sh/chart: {{ include "mediaplane.chart" . }}
{{ include "mediaplane.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mediaplane
{{- end }}

{{/* Selector labels (immutable on Deployments: never add to these). */}}
{{- define "mediaplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mediaplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Per component: labels and selector labels. Call with (dict "ctx" $ "component" "api"). */}}
{{- define "mediaplane.componentLabels" -}}
{{ include "mediaplane.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "mediaplane.componentSelectorLabels" -}}
{{ include "mediaplane.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
ServiceAccount names. Call with (dict "ctx" $ "component" "operator"|"api"|"worker").
*/}}
{{- define "mediaplane.serviceAccountName" -}}
{{- $sa := (index .ctx.Values .component).serviceAccount }}
{{- if $sa.create }}
{{- default (printf "%s-%s" (include "mediaplane.fullname" .ctx) .component) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* An image reference. Call with (dict "ctx" $ "image" .Values.api.image). */}}
{{- define "mediaplane.image" -}}
{{- $tag := .image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion }}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret the chart generates when no existing one is named (JWT and/or signing key). */}}
{{- define "mediaplane.generatedSecretName" -}}
{{- printf "%s-api-keys" (include "mediaplane.fullname" .) }}
{{- end }}

{{/* True ("true") when the API's JWT shared secret comes from the generated Secret. */}}
{{- define "mediaplane.jwt.generated" -}}
{{- if and (not .Values.api.jwt.existingSecret) (has "HS256" .Values.api.jwt.algorithms) }}true{{ end }}
{{- end }}

{{- define "mediaplane.signing.generated" -}}
{{- if not .Values.api.streamSigning.existingSecret }}true{{ end }}
{{- end }}

{{/* The API's external base URL: publicUrl, else the first ingress host, else the Service. */}}
{{- define "mediaplane.api.publicUrl" -}}
{{- if .Values.api.publicUrl }}
{{- .Values.api.publicUrl | trimSuffix "/" }}
{{- else if and .Values.api.ingress.enabled .Values.api.ingress.hosts }}
{{- $scheme := ternary "https" "http" (gt (len .Values.api.ingress.tls) 0) }}
{{- printf "%s://%s" $scheme (first .Values.api.ingress.hosts).host }}
{{- else }}
{{- printf "http://%s-api.%s.svc:%v" (include "mediaplane.fullname" .) .Release.Namespace .Values.api.service.port }}
{{- end }}
{{- end }}

{{/* S3 settings and credentials, shared by the operator and the API. */}}
{{- define "mediaplane.s3Env" -}}
{{- with .Values.s3.endpoint }}
- name: MEDIAPLANE_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.s3.publicEndpoint }}
- name: MEDIAPLANE_S3_PUBLIC_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: MEDIAPLANE_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
- name: MEDIAPLANE_S3_REGION
  value: {{ .Values.s3.region | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ .Values.s3.region | quote }}
- name: MEDIAPLANE_S3_PATH_STYLE
  value: {{ .Values.s3.pathStyle | quote }}
{{- with .Values.s3.credentials.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.s3.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.s3.credentials.secretAccessKeyKey }}
{{- end }}
{{- end }}

{{/* Pod-level security context (restricted Pod Security Standard). */}}
{{- define "mediaplane.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/* Container-level security context (restricted Pod Security Standard). */}}
{{- define "mediaplane.securityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* The workers' ServiceAccount name; empty = the tenant namespace's default (no token either way). */}}
{{- define "mediaplane.workerServiceAccountName" -}}
{{- if .Values.worker.serviceAccount.create }}
{{- default (printf "%s-worker" (include "mediaplane.fullname" .)) .Values.worker.serviceAccount.name }}
{{- else }}
{{- .Values.worker.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Cross-field checks the schema cannot express; fails the render with a clear message. */}}
{{- define "mediaplane.validate" -}}
{{- $jwt := .Values.api.jwt }}
{{- if and (or (has "RS256" $jwt.algorithms) (has "ES256" $jwt.algorithms)) (not $jwt.jwksUrl) }}
{{- fail "api.jwt.jwksUrl is required when api.jwt.algorithms has RS256 or ES256" }}
{{- end }}
{{- if and (not $jwt.existingSecret) (not .Values.api.streamSigning.existingSecret) (eq $jwt.secretKey .Values.api.streamSigning.secretKey) }}
{{- fail "api.jwt.secretKey and api.streamSigning.secretKey must differ: both are generated into one Secret" }}
{{- end }}
{{- end }}
