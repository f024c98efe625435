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
{{- end -}}

{{- define "berth-operator.serviceAccountName" -}}
{{- default (include "berth-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "berth-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "berth-operator.registryImage" -}}
{{- printf "%s:%s" .Values.registryImage.repository (default .Chart.AppVersion .Values.registryImage.tag) -}}
{{- end -}}
