"""Entra's expression language for attribute mappings.

Public surface::

    expr = compile_expression('Mid([userPrincipalName], 1, 8)')   # ExpressionSyntaxError
    expr.evaluate_row({"userPrincipalName": "adele.vance@contoso.example"})  # 'adele.va'
    result = expr.evaluate_frame(users)   # FrameResult(values, errors by row position)

See ``functions.py`` for the functions and their null semantics.
"""

from include.provisioning.expressions.errors import ExpressionRuntimeError, ExpressionSyntaxError
from include.provisioning.expressions.evaluate import Expression, FrameResult, compile_expression
from include.provisioning.expressions.functions import FUNCTIONS, SINGLE_APP_ROLE_ERROR, UNSUPPORTED
from include.provisioning.expressions.lexer import MAX_EXPRESSION_LENGTH

__all__ = [
    "FUNCTIONS",
    "MAX_EXPRESSION_LENGTH",
    "SINGLE_APP_ROLE_ERROR",
    "UNSUPPORTED",
    "Expression",
    "ExpressionRuntimeError",
    "ExpressionSyntaxError",
    "FrameResult",
    "compile_expression",
]
