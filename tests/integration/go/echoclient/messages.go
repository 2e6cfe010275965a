// SPDX-License-Identifier: Apache-2.0
// Hand-written Go structs for the cshim.fixture.v1 messages; gogo/protobuf marshals them by
// their struct tags, so no generated code is needed.

package main

import "github.com/gogo/protobuf/proto"

type EchoRequest struct {
	Text string `protobuf:"bytes,1,opt,name=text,proto3"`
}

func (m *EchoRequest) Reset()         { *m = EchoRequest{} }
func (m *EchoRequest) String() string { return proto.CompactTextString(m) }
func (*EchoRequest) ProtoMessage()    {}

type SleepRequest struct {
	Text    string `protobuf:"bytes,1,opt,name=text,proto3"`
	DelayMs uint32 `protobuf:"varint,2,opt,name=delay_ms,json=delayMs,proto3"`
}

func (m *SleepRequest) Reset()         { *m = SleepRequest{} }
func (m *SleepRequest) String() string { return proto.CompactTextString(m) }
func (*SleepRequest) ProtoMessage()    {}

type FailRequest struct {
	Code    int32  `protobuf:"varint,1,opt,name=code,proto3"`
	Message string `protobuf:"bytes,2,opt,name=message,proto3"`
}

func (m *FailRequest) Reset()         { *m = FailRequest{} }
func (m *FailRequest) String() string { return proto.CompactTextString(m) }
func (*FailRequest) ProtoMessage()    {}

type BigRequest struct {
	Size uint32 `protobuf:"varint,1,opt,name=size,proto3"`
}

func (m *BigRequest) Reset()         { *m = BigRequest{} }
func (m *BigRequest) String() string { return proto.CompactTextString(m) }
func (*BigRequest) ProtoMessage()    {}

type BigResponse struct {
	Data []byte `protobuf:"bytes,1,opt,name=data,proto3"`
}

func (m *BigResponse) Reset()         { *m = BigResponse{} }
func (m *BigResponse) String() string { return proto.CompactTextString(m) }
func (*BigResponse) ProtoMessage()    {}

type EchoResponse struct {
	Text      string `protobuf:"bytes,1,opt,name=text,proto3"`
	Namespace string `protobuf:"bytes,2,opt,name=namespace,proto3"`
}

func (m *EchoResponse) Reset()         { *m = EchoResponse{} }
func (m *EchoResponse) String() string { return proto.CompactTextString(m) }
func (*EchoResponse) ProtoMessage()    {}

// Empty is google.protobuf.Empty.
type Empty struct{}

func (m *Empty) Reset()         { *m = Empty{} }
func (m *Empty) String() string { return proto.CompactTextString(m) }
func (*Empty) ProtoMessage()    {}
