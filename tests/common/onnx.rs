//! Small ONNX models built in tests as protobuf, so each test says exactly what its model
//! holds (ops, attributes, weights) without a Python exporter.

use prost::Message;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension::Value as Dim, tensor_shape_proto::Dimension,
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

fn float_tensor(name: &str, shape: &[i64]) -> ValueInfoProto {
    let dim = shape.iter().map(|d| Dimension { value: Some(Dim::DimValue(*d)), ..Default::default() }).collect();
    let tensor = type_proto::Tensor { elem_type: DataType::Float as i32, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

/// A graph with one float input, built node by node.
pub struct Graph {
    graph: GraphProto,
}

impl Graph {
    pub fn new(input: &str, shape: &[i64]) -> Self {
        Graph { graph: GraphProto { name: "test".into(), input: vec![float_tensor(input, shape)], ..Default::default() } }
    }

    /// Adds a node named `name` computing `outputs` from `inputs`.
    pub fn node(mut self, op: &str, name: &str, inputs: &[&str], outputs: &[&str], attributes: Vec<AttributeProto>) -> Self {
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            op_type: op.into(),
            name: name.into(),
            attribute: attributes,
            ..Default::default()
        });
        self
    }

    /// Adds a float constant (initializer).
    pub fn weight(mut self, name: &str, shape: &[i64], values: Vec<f32>) -> Self {
        assert_eq!(values.len() as i64, shape.iter().product::<i64>(), "{name}: values do not fill the shape");
        self.graph.initializer.push(TensorProto {
            name: name.into(),
            dims: shape.to_vec(),
            data_type: DataType::Float as i32,
            float_data: values,
            ..Default::default()
        });
        self
    }

    /// Declares a graph output (shape left to inference).
    pub fn output(mut self, name: &str) -> Self {
        self.graph.output.push(float_tensor(name, &[]));
        self
    }

    pub fn encode(self) -> Vec<u8> {
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
            graph: Some(self.graph),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: values.to_vec(), ..Default::default() }
}

pub fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: value, ..Default::default() }
}

pub fn text(name: &str, value: &str) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::String as i32, s: value.as_bytes().to_vec(), ..Default::default() }
}

pub fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: value, ..Default::default() }
}
