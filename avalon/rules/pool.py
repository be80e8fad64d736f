"""Rules of the pooling primitives: max pooling's three primitives route cotangents through each
window's maximum (no gradient to the positions themselves, nor to the maxima they are given);
average pooling and its transpose are each other's adjoints."""
from ..ops import pool as pl
from .registry import rule


@rule(pl.max_pool)
def _max_pool(g, out, x, kernel, stride, padding, dilation):
    return (pl.max_pool_scatter(g, x, out, kernel=kernel, stride=stride, padding=padding, dilation=dilation),)


@rule(pl.max_pool_scatter)
def _max_pool_scatter(h, out, g, x, y, kernel, stride, padding, dilation):
    return pl.max_pool_gather(h, x, y, kernel=kernel, stride=stride, padding=padding, dilation=dilation), None, None


@rule(pl.max_pool_gather)
def _max_pool_gather(h, out, v, x, y, kernel, stride, padding, dilation):
    return pl.max_pool_scatter(h, x, y, kernel=kernel, stride=stride, padding=padding, dilation=dilation), None, None


@rule(pl.avg_pool)
def _avg_pool(g, out, x, kernel, stride, padding, count_include_pad, divisor_override):
    return (pl.avg_pool_transpose(g, shape=tuple(x.shape[-len(kernel):]), kernel=kernel, stride=stride,
                                  padding=padding, count_include_pad=count_include_pad,
                                  divisor_override=divisor_override),)


@rule(pl.avg_pool_transpose)
def _avg_pool_transpose(h, out, g, shape, kernel, stride, padding, count_include_pad, divisor_override):
    return (pl.avg_pool(h, kernel=kernel, stride=stride, padding=padding, count_include_pad=count_include_pad,
                        divisor_override=divisor_override),)
