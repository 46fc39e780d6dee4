from django.contrib import messages
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .files import sample_path
from .forms import ItemForm
from .models import Item


@require_http_methods(["GET", "HEAD", "POST"])
def item_list(request):
    if request.method == "POST":
        form = ItemForm(request.POST)
        if form.is_valid():
            item = form.save()
            messages.success(request, f"Added {item.name}.")
            # Post/Redirect/Get: a reload must not submit the form again.
            return redirect("shop:item_list")
    else:
        form = ItemForm()
    items = Item.objects.all()[:50]
    return render(request, "shop/item_list.html", {"items": items, "form": form})


@require_GET
def api_items(request):
    items = list(Item.objects.values("id", "name", "price", "created")[:100])
    return JsonResponse({"count": len(items), "items": items})


@require_GET
def download(request):
    return FileResponse(open(sample_path(), "rb"), as_attachment=True, filename="sample.bin")


@require_GET
def stream(request):
    def lines():
        for i in range(1, 101):
            yield f"line {i:03d}: {'.' * 60}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")


# Benchmark endpoints: each isolates one kind of work a server must handle.


def bench_plain(request):
    return HttpResponse(b"hello world", content_type="text/plain")


def bench_template(request):
    rows = [{"n": i, "name": f"row {i}", "even": i % 2 == 0} for i in range(50)]
    return render(request, "shop/bench_template.html", {"rows": rows})


def bench_db(request):
    items = list(Item.objects.order_by("id").values("id", "name", "price")[:10])
    return JsonResponse({"items": items})


@csrf_exempt
@require_POST
def bench_upload(request):
    return HttpResponse(str(len(request.body)), content_type="text/plain")


def bench_download(request):
    return FileResponse(open(sample_path(), "rb"), content_type="application/octet-stream")
