# swarmgate: one static binary, no shell, no libc.
#   docker build -t swarmgate .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=none
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/swarmgate ./cmd/swarmgate

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/swarmgate /swarmgate
EXPOSE 80 443 8080
ENTRYPOINT ["/swarmgate"]
CMD ["edge"]
