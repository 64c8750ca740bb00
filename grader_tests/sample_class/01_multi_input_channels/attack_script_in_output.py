"""Attack (red team): a correct answer whose outputs carry scripts for the instructor's
browser (formgrader, feedback): a script tag, an image's onerror, a JavaScript output and
an inline SVG handler. The autograded notebook keeps none of them; the points are earned."""
# %% corr2d_multi_in
from IPython.display import HTML, Javascript, display

display(HTML('<script>fetch("/api/contents?probe=script")</script>'))
display(HTML('<img src=x onerror="fetch(\'/api/contents?probe=img\')">'))
display(Javascript('fetch("/api/contents?probe=js")'))
display(HTML('<svg><circle r="5" onload="fetch(\'/api/contents?probe=svg\')"/></svg>'))

def corr2d_multi_in(X, K):
    return sum(d2l.corr2d(x, k) for x, k in zip(X, K))
