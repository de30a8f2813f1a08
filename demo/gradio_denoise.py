"""Gradio demo: watch an Energy-Based Transformer denoise a photo by thinking.

    python demo/gradio_denoise.py [--config C] [--checkpoint K]
        [--dit-config C2 --dit-checkpoint K2] [--host 127.0.0.1] [--port 7860]

Open the printed address (http://127.0.0.1:7860 by default). Upload an image or pick
one of the bundled photos (scikit-image's, the four held out of the quick-start's
training), choose a noise level and a number of thinking steps, and press Denoise: the
page shows the noisy input, the EBT's result (and the DiT baseline's with
``--dit-config``/``--dit-checkpoint``) with PSNR / SSIM against the clean image, the
EBT's per-patch energy map (its uncertainty), every thinking step as a gallery, and the
energy after each step. Self-verification (M candidates) and adaptive stopping (a
tolerance on the energy change) have their own sliders.

Without a trained model: train the quick-start first (about 3.5 minutes on a 2-core CPU),
which writes the default checkpoint::

    python tools/train.py configs/quickstart/ebt_denoise_skimage.py
    python tools/train.py configs/quickstart/dit_denoise_skimage.py   # the DiT, optional

Runs on the CPU. Listens on 127.0.0.1 only unless ``--host`` says otherwise; uploads
are capped (``--max-upload-mb``, ``--max-pixels``); Gradio's analytics are off and the
page loads nothing from the internet (system fonts, no CDN). Checkpoints are loaded
weights-only. Images larger than the model's training size are denoised in overlapping
tiles at full resolution (see ``ebtvision.apis.DenoiseInferencer``).
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

# Before gradio is imported: no usage analytics, nothing looked up on the Hugging Face Hub.
os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_HUB_DISABLE_TELEMETRY', '1')

import numpy as np  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from ebtvision.apis import overlay_heatmap  # noqa: E402
from ebtvision.utils import exit_on_missing_extra, require  # noqa: E402

DEFAULT_CONFIG = osp.join('configs', 'quickstart', 'ebt_denoise_skimage.py')
DEFAULT_CHECKPOINT = osp.join('work_dirs', 'ebt_denoise_skimage', 'iter_600.pth')
#: scikit-image photos the quick-start holds out of training (its validation photos).
EXAMPLE_PHOTOS = ('astronaut.png', 'coffee.png', 'chelsea.png', 'camera.png')
GET_A_MODEL = (
    'No trained model? Train the quick-start (about 3.5 minutes on a 2-core CPU); it '
    'writes the default checkpoint work_dirs/ebt_denoise_skimage/iter_600.pth:\n'
    '    python tools/train.py configs/quickstart/ebt_denoise_skimage.py\n'
    'and for the DiT baseline (--dit-config configs/quickstart/dit_denoise_skimage.py '
    '--dit-checkpoint work_dirs/dit_denoise_skimage/iter_600.pth):\n'
    '    python tools/train.py configs/quickstart/dit_denoise_skimage.py')
MAX_THINKING_STEPS = 16
MAX_CANDIDATES = 8


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Gradio demo of EBT image denoising (thinking = energy minimisation)',
        epilog=GET_A_MODEL, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help=f'EBT denoiser config (default: {DEFAULT_CONFIG})')
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help=f'its checkpoint, loaded weights-only (default: {DEFAULT_CHECKPOINT})')
    parser.add_argument('--dit-config', help='DiT baseline config, shown beside the EBT')
    parser.add_argument('--dit-checkpoint', help='DiT baseline checkpoint')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to listen on (default 127.0.0.1: this machine only; '
                        '0.0.0.0 exposes the demo to the network)')
    parser.add_argument('--port', type=int, default=7860, help='port (default 7860)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    parser.add_argument('--large-images', choices=('tile', 'resize'), default='tile',
                        help='images larger than the model: denoise in overlapping tiles at '
                        'full resolution (default) or downscale to the model size')
    parser.add_argument('--max-upload-mb', type=float, default=10.0,
                        help='largest upload accepted, in MB (default 10)')
    parser.add_argument('--max-pixels', type=int, default=1024 * 1024,
                        help='largest image accepted, in pixels (default 1048576 = 1024x1024)')
    args = parser.parse_args(argv)
    if bool(args.dit_config) != bool(args.dit_checkpoint):
        parser.error('--dit-config and --dit-checkpoint go together')
    if not 0 < args.port < 65536:
        parser.error(f'--port must be in 1..65535, got {args.port}')
    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        parser.error('--max-upload-mb and --max-pixels must be positive')
    return args


def _gradio():
    """gradio (the [demo] extra), imported after the environment above is set."""
    return require('gradio', 'the Gradio demo (demo/gradio_denoise.py)')


def example_photos() -> List[str]:
    """Paths of the bundled example photos that exist in this installation."""
    from ebtvision.apis import skimage_data_dir
    folder = skimage_data_dir()
    return [osp.join(folder, name) for name in EXAMPLE_PHOTOS
            if osp.isfile(osp.join(folder, name))]


def load_inferencer(config: str, checkpoint: str, what: str, args):
    """``(inferencer, None)`` or ``(None, message)``: the page shows the message."""
    from ebtvision.apis import DenoiseInferencer, ModelLoadError
    try:
        inferencer = DenoiseInferencer(config, checkpoint, device=args.device,
                                       large_images=args.large_images,
                                       max_pixels=args.max_pixels)
    except (ModelLoadError, ValueError) as error:
        return None, f'{what} could not be loaded: {error}'
    if (what == 'EBT') != inferencer.is_ebt:
        expected = 'an EBTDenoiser' if what == 'EBT' else 'a DiTDenoiser'
        return None, (f'{what} could not be loaded: {config} builds a '
                      f'{type(inferencer.model).__name__}, expected {expected}')
    return inferencer, None


def to_uint8(image: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Float [0, 1] image -> uint8 for display (gray stays 2-D)."""
    if image is None:
        return None
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def energy_figure(energies: Sequence[float]):
    """Energy after each thinking step (step 0 = the noisy start)."""
    from matplotlib.figure import Figure  # not pyplot: no global figure registry to leak
    figure = Figure(figsize=(5.0, 3.0), dpi=100, layout='constrained')
    axes = figure.add_subplot()
    axes.plot(range(len(energies)), energies, marker='o', color='tab:blue')
    axes.set_xlabel('thinking step (0 = noisy start)')
    axes.set_ylabel('energy')
    axes.set_xticks(range(len(energies)))
    axes.grid(alpha=0.3)
    return figure


def _fmt(value: Optional[float], digits: int) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def metrics_table(rows) -> str:
    """Markdown table: one row per image shown (name, result, 'noisy' or 'result')."""
    lines = ['| image | PSNR (dB) | SSIM | steps (used) | candidates | time (s) |',
             '|---|---|---|---|---|---|']
    for name, result, which in rows:
        if which == 'noisy':
            lines.append(f'| {name} | {_fmt(result.noisy_psnr, 2)} | '
                         f'{_fmt(result.noisy_ssim, 3)} | - | - | - |')
        else:
            used = '' if result.steps_used is None else f' ({result.steps_used:.1f})'
            lines.append(f'| {name} | {_fmt(result.psnr, 2)} | {_fmt(result.ssim, 3)} | '
                         f'{result.num_steps}{used} | {result.num_candidates} | '
                         f'{result.seconds:.2f} |')
    return '\n'.join(lines)


class DenoiseDemo:
    """The page and its request handler (kept apart from ``main`` for tests)."""

    def __init__(self, ebt, dit=None, load_errors: Sequence[str] = (),
                 examples: Sequence[str] = ()) -> None:
        self.ebt, self.dit = ebt, dit
        self.load_errors = list(load_errors)
        self.examples = list(examples)

    # ----------------------------------------------------------------- handler
    def denoise(self, image_path, noise_level, thinking_steps, already_noisy, seed,
                dit_steps=None, num_candidates=1, tolerance=0.0):
        """One request: returns the values of the page's output components.

        ``num_candidates`` > 1 turns on self-verification; ``tolerance`` > 0 lets each
        tile stop thinking once its energy has converged (``thinking_steps`` = budget).
        """
        gr = _gradio()

        from ebtvision.apis import ImageInputError
        if self.ebt is None:
            raise gr.Error('\n'.join(self.load_errors) + '\n' + GET_A_MODEL, title='No model')
        if not image_path:
            raise gr.Error('Upload an image or pick one of the examples first.',
                           title='No image')
        level = None if already_noisy else float(noise_level)
        name = osp.basename(str(image_path))
        try:
            ebt = self.ebt(image_path, noise_level=level, num_steps=int(thinking_steps),
                           num_candidates=int(num_candidates or 1),
                           tolerance=float(tolerance) or None, seed=int(seed or 0))
            dit = None
            if self.dit is not None:
                dit = self.dit(image_path, noise_level=level, num_steps=int(dit_steps or 0)
                               or None, seed=int(seed or 0))
        except ImageInputError as error:
            message = str(error).replace(str(image_path), name)  # not the server's temp path
            raise gr.Error(f'This image cannot be used: {message}', title='Bad image') from None
        except ValueError as error:
            raise gr.Error(str(error), title='Bad setting') from None

        rows = [('noisy input', ebt, 'noisy'), ('EBT', ebt, 'result')]
        if dit is not None:
            rows.append(('DiT (reverse steps)', dit, 'result'))
        if ebt.psnr is None:
            table = ('The input was treated as already noisy, so there is no clean image to '
                     'measure PSNR / SSIM against.\n\n' + metrics_table(rows))
        else:
            table = metrics_table(rows)
        gallery = [(to_uint8(img), 'noisy start' if step == 0 else
                    f'step {step}: E {energy:.3f}')
                   for step, (img, energy) in enumerate(zip(ebt.trajectory, ebt.energies))]
        height, width = ebt.denoised.shape[:2]
        details = dict(
            image=dict(name=name, height=height, width=width, tiles=ebt.num_tiles),
            noise_level=level,
            ebt=self._summary(ebt),
            dit=None if dit is None else self._summary(dit))
        heat = overlay_heatmap(to_uint8(ebt.denoised), ebt.energy_map, alpha=0.6)
        return (to_uint8(ebt.noisy), to_uint8(ebt.denoised),
                to_uint8(dit.denoised) if dit is not None else None, heat, table, gallery,
                energy_figure(ebt.energies), details)

    @staticmethod
    def _summary(result) -> dict:
        return dict(psnr=result.psnr, ssim=result.ssim, noisy_psnr=result.noisy_psnr,
                    noisy_ssim=result.noisy_ssim, steps=result.num_steps,
                    steps_used=result.steps_used, candidates=result.num_candidates,
                    energies=result.energies, seconds=round(result.seconds, 4))

    # ----------------------------------------------------------------- page
    def header(self) -> str:
        lines = ['# Energy-Based Transformer denoising',
                 'The EBT scores how compatible a candidate image is with clean photos '
                 '(its *energy*) and denoises by gradient descent on that energy: each '
                 '*thinking step* is one step downhill. More steps = thinking longer. The '
                 '*energy map* shows the final energy of every patch: bright patches are '
                 'the ones the model finds least plausible (its uncertainty).']
        if self.ebt is not None:
            model = self.ebt
            lines.append(f'EBT: `{osp.basename(str(model.model.cfg.filename))}`, trained on '
                         f'{model.tile_size} px images at noise level '
                         f'{model.train_noise_level:g}, {model.default_steps} thinking '
                         'step(s). Larger images are denoised in overlapping tiles.')
        if self.dit is not None:
            lines.append(f'DiT baseline: `{osp.basename(str(self.dit.model.cfg.filename))}`, '
                         f'{self.dit.default_steps} reverse steps by default.')
        for error in self.load_errors:
            lines.append(f'> **Error.** {error}')
        if self.ebt is None:
            lines.append('> ' + GET_A_MODEL.replace('\n', '  \n> '))
        return '\n\n'.join(lines)

    def build(self):
        gr = _gradio()
        train_level = self.ebt.train_noise_level if self.ebt else 0.1
        default_steps = self.ebt.default_steps if self.ebt else 1
        with gr.Blocks(title='EBT denoising', analytics_enabled=False) as page:
            gr.Markdown(self.header())
            with gr.Row():
                with gr.Column(scale=1):
                    image = upload_component(label='Clean image (upload or pick an example)',
                                             type='filepath', sources=['upload', 'clipboard'],
                                             value=self.examples[0] if self.examples else None,
                                             height=280)
                    noise = gr.Slider(0.01, 0.5, value=train_level, step=0.01,
                                      label='Noise level (DDPM schedule fraction)',
                                      info=f'{train_level:g} = the training level; higher '
                                      'is out of distribution')
                    steps = gr.Slider(1, MAX_THINKING_STEPS, value=default_steps, step=1,
                                      label='EBT thinking steps')
                    candidates = gr.Slider(1, MAX_CANDIDATES, value=1, step=1,
                                           label='EBT self-verification candidates',
                                           info='M candidates per tile (step sizes differ); '
                                           'the lowest final energy is kept')
                    tolerance = gr.Slider(0.0, 0.05, value=0.0, step=0.001,
                                          label='EBT adaptive stop (relative energy change)',
                                          info='0 = always run every step; else a tile stops '
                                          'once its energy changes by less than this')
                    dit_steps = gr.Slider(1, 100, step=1, label='DiT reverse steps',
                                          value=self.dit.default_steps if self.dit else 100,
                                          visible=self.dit is not None)
                    with gr.Row():
                        already_noisy = gr.Checkbox(
                            False, label='My image is already noisy (add no noise)')
                        seed = gr.Number(0, label='Noise seed', precision=0, minimum=0)
                    button = gr.Button('Denoise', variant='primary')
                    if self.examples:
                        gr.Examples([[path] for path in self.examples], inputs=[image],
                                    label='Bundled photos (held out of training)')
                with gr.Column(scale=2):
                    with gr.Row():
                        noisy_out = gr.Image(label='Noisy input', format='png',
                                             interactive=False, height=280)
                        ebt_out = gr.Image(label='EBT denoised', format='png',
                                           interactive=False, height=280)
                        dit_out = gr.Image(label='DiT denoised', format='png',
                                           interactive=False, height=280,
                                           visible=self.dit is not None)
                        heat_out = gr.Image(label='EBT energy map',
                                            format='png', interactive=False, height=280)
                    table = gr.Markdown()
                    with gr.Row():
                        gallery = gr.Gallery(label='Thinking trajectory', format='png',
                                             columns=4, height=260, interactive=False)
                        plot = gr.Plot(label='Energy per thinking step')
                    with gr.Accordion('Numbers (JSON)', open=False):
                        details = gr.JSON()
            inputs = [image, noise, steps, already_noisy, seed, dit_steps, candidates,
                      tolerance]
            outputs = [noisy_out, ebt_out, dit_out, heat_out, table, gallery, plot, details]
            button.click(self.denoise, inputs, outputs, api_name='denoise')
            if self.ebt is not None and self.examples:
                page.load(self.denoise, inputs, outputs, api_name=False)
        return page


def upload_component(**kwargs):
    """``gr.Image`` whose unreadable uploads reach the handler, which says what is wrong.

    Gradio's own image input fails on a file PIL cannot open with a generic "could not
    preprocess" error; here the file goes on to ``load_image`` (OpenCV reads more
    formats, e.g. 16-bit TIFFs) and a bad one gets a message naming the problem. The
    instance's method is wrapped rather than the class subclassed: Gradio writes a
    ``.pyi`` stub beside the source of every component subclass.
    """
    gr = _gradio()
    image = gr.Image(**kwargs)
    gradio_preprocess = image.preprocess

    def preprocess(payload):
        try:
            return gradio_preprocess(payload)
        except Exception:  # noqa: BLE001  reported by the handler instead
            return str(payload.path) if payload is not None and payload.path else None

    image.preprocess = preprocess
    return image


def theme():
    """Gradio's default look with system fonts (the default fetches Google Fonts)."""
    gr = _gradio()
    return gr.themes.Default(font=['ui-sans-serif', 'system-ui', 'sans-serif'],
                             font_mono=['ui-monospace', 'Consolas', 'monospace'])


def create_demo(args) -> DenoiseDemo:
    """Load the models named on the command line; failures become messages in the page."""
    errors = []
    ebt, error = load_inferencer(args.config, args.checkpoint, 'EBT', args)
    if error:
        errors.append(error)
    dit = None
    if args.dit_config:
        dit, error = load_inferencer(args.dit_config, args.dit_checkpoint, 'DiT', args)
        if error:
            errors.append(error)
    return DenoiseDemo(ebt, dit, errors, example_photos())


def launch(page, args, block: bool = True):
    """Start the server; returns the page (its ``local_url`` says where it is)."""
    page.queue(max_size=16, default_concurrency_limit=1)
    page.launch(server_name=args.host, server_port=args.port, share=False,
                max_file_size=int(args.max_upload_mb * 1024 * 1024), show_error=True, ssr_mode=False,
                theme=theme(), prevent_thread_lock=not block, quiet=False,
                allowed_paths=[osp.dirname(path) for path in example_photos()][:1])
    return page


@exit_on_missing_extra
def main(argv=None) -> None:
    args = parse_args(argv)
    _gradio()  # a missing gradio says so before the models load
    started = time.perf_counter()
    demo = create_demo(args)
    for error in demo.load_errors:
        print(f'error: {error}', file=sys.stderr)
    if demo.ebt is None:
        print(GET_A_MODEL, file=sys.stderr)
        print('The page still opens and shows this message.', file=sys.stderr)
    print(f'models ready in {time.perf_counter() - started:.1f} s; serving on '
          f'http://{args.host}:{args.port}', flush=True)
    launch(demo.build(), args)


if __name__ == '__main__':
    main()
