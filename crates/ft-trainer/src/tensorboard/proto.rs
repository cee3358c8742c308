//! The messages of tensorflow's `event.proto`, `summary.proto`, `tensor.proto` and
//! `tensor_shape.proto` that scalars and text need, with their field numbers. Fields left out
//! are never written, and readers skip fields they do not know.

/// One record of an event file (`tensorboard.Event`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step the event belongs to.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event holds.
    #[prost(oneof = "event::What", tags = "3, 5")]
    pub what: Option<event::What>,
    /// Which program wrote the file; set on the first event.
    #[prost(message, optional, tag = "10")]
    pub source_metadata: Option<SourceMetadata>,
}

/// `Event`'s nested types.
pub mod event {
    /// The `what` oneof of `Event`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// The file format (`brain.Event:2`), in the first event of a file.
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// Values logged at the event's step.
        #[prost(message, tag = "5")]
        Summary(super::Summary),
    }
}

/// The program that wrote an event file (`tensorboard.SourceMetadata`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SourceMetadata {
    /// The writer's name.
    #[prost(string, tag = "1")]
    pub writer: String,
}

/// Values logged together (`tensorboard.Summary`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<summary::Value>,
}

/// `Summary`'s nested types.
pub mod summary {
    /// One tagged value (`tensorboard.Summary.Value`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        /// The name TensorBoard shows (`train/loss`).
        #[prost(string, tag = "1")]
        pub tag: String,
        /// Which plugin reads the value; absent for plain scalars.
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<super::SummaryMetadata>,
        /// The value.
        #[prost(oneof = "value::Value", tags = "2, 8")]
        pub value: Option<value::Value>,
    }

    /// `Summary.Value`'s nested types.
    pub mod value {
        /// The `value` oneof of `Summary.Value`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// A scalar (single precision, as torch's `add_scalar` writes it).
            #[prost(float, tag = "2")]
            SimpleValue(f32),
            /// A tensor, which plugins such as text interpret.
            #[prost(message, tag = "8")]
            Tensor(super::super::TensorProto),
        }
    }
}

/// Which plugin a value belongs to (`tensorboard.SummaryMetadata`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin and its data.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<summary_metadata::PluginData>,
}

/// `SummaryMetadata`'s nested types.
pub mod summary_metadata {
    /// A plugin's name and its own serialised data (`SummaryMetadata.PluginData`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PluginData {
        /// The plugin (`text`).
        #[prost(string, tag = "1")]
        pub plugin_name: String,
        /// The plugin's data; empty for the text plugin's version 0.
        #[prost(bytes = "vec", tag = "2")]
        pub content: Vec<u8>,
    }
}

/// A tensor (`tensorboard.TensorProto`), here only a vector of strings.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// The element type.
    #[prost(enumeration = "DataType", tag = "1")]
    pub dtype: i32,
    /// The dimensions.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// The elements, when `dtype` is `DtString`.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// A tensor's dimensions (`tensorboard.TensorShapeProto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// One entry per dimension.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<tensor_shape_proto::Dim>,
}

/// `TensorShapeProto`'s nested types.
pub mod tensor_shape_proto {
    /// One dimension (`TensorShapeProto.Dim`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dim {
        /// Its length.
        #[prost(int64, tag = "1")]
        pub size: i64,
    }
}

/// Element types of tensors (`tensorboard.DataType`), the two this module needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    /// Not set (proto3's zero value).
    DtInvalid = 0,
    /// Byte strings.
    DtString = 7,
}
