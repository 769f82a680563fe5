// Header of matmul.wgsl for the plain product: f32 operands.
alias Operand = f32;
