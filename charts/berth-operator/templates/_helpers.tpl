{{/* Full name of the release's objects. */}}
{{- define "berth-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth-operator.selectorLabels" -}}
app.kubernetes.io/name: berth-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "berth-operator.labels" -}}
{{ include "berth-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* registry/repository:tag, or @digest when a digest pins it. */}}
{{- define "berth-operator.imageRef" -}}
{{- $repo := .image.repository -}}
{{- with .image.registry }}{{ $repo = printf "%s/%s" . $repo }}{{ end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .appVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "berth-operator.serviceAccountName" -}}
{{- default (include "berth-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "berth-operator.image" -}}
{{- include "berth-operator.imageRef" (dict "image" .Values.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "berth-operator.registryImage" -}}
{{- include "berth-operator.imageRef" (dict "image" .Values.registryImage "appVersion" .Chart.AppVersion) -}}
{{- end -}}
