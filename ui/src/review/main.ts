// The raters' page: what `whet serve --review` serves to people invited to rate answers. It shares
// the app's styles, transport and generated API, and nothing else of the app is loaded.
import { mount } from 'svelte';
import '../app.css';
import RaterScreen from '../lib/features/rater/RaterScreen.svelte';

const target = document.getElementById('app');
if (!target) throw new Error('review.html has no #app element');
target.replaceChildren();
mount(RaterScreen, { target });
