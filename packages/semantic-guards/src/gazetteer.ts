/**
 * Names people often type in lower case. The entities guard mainly relies on how a word is written
 * (capitalised mid-sentence, ALL-CAPS, mixed case, letters with digits); this list only covers the
 * common names that lose those marks in casual typing ("should i learn rust or python").
 */
export const KNOWN_NAMES: ReadonlySet<string> = new Set(
  // programming languages, platforms, tools
  (
    'python java javascript typescript golang rust ruby php perl scala kotlin swift haskell erlang elixir clojure lua matlab ' +
    'fortran cobol pascal julia dart groovy bash powershell c++ c# f# sql nosql html css react angular vue svelte django flask ' +
    'rails laravel nodejs deno jquery bootstrap tensorflow pytorch keras pandas numpy linux windows macos ubuntu ' +
    'debian fedora centos android ios iphone ipad ipod mac macbook chromebook kindle xbox playstation nintendo mysql postgres ' +
    'postgresql sqlite mongodb redis cassandra oracle docker kubernetes aws azure gcp heroku github gitlab bitbucket ' +
    'powerpoint photoshop illustrator wordpress shopify salesforce sap hadoop kafka unreal blender autocad ' +
    // companies and brands
    'google apple microsoft amazon facebook meta instagram whatsapp twitter snapchat tiktok youtube netflix spotify uber lyft ' +
    'airbnb tesla samsung huawei xiaomi oneplus nokia motorola sony lg dell hp lenovo asus acer intel amd nvidia qualcomm ibm ' +
    'visa mastercard amex paypal paytm venmo stripe quora reddit linkedin wikipedia yahoo bing baidu alibaba flipkart walmart ' +
    'toyota honda bmw audi mercedes ford chevrolet nissan hyundai volkswagen ferrari porsche coca cola pepsi nike adidas ' +
    'jio airtel vodafone verizon tmobile harvard stanford mit oxford cambridge yale princeton iit iim nasa isro ' +
    // countries and nationalities
    'usa uk india china japan germany france italy spain russia brazil canada australia mexico pakistan bangladesh nepal ' +
    'sri lanka indonesia malaysia singapore thailand vietnam philippines korea iran iraq israel palestine syria turkey egypt ' +
    'nigeria kenya africa europe asia america ireland scotland england wales sweden norway denmark finland netherlands ' +
    'belgium switzerland austria poland ukraine greece portugal argentina chile peru colombia venezuela cuba dubai uae saudi ' +
    'qatar afghanistan zealand indian chinese japanese german french italian spanish russian brazilian canadian australian ' +
    'mexican pakistani american british english irish korean arabic hindi urdu tamil telugu bengali marathi gujarati punjabi ' +
    'kannada malayalam sanskrit persian hebrew latin greek ' +
    // US states and big cities
    'alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho illinois indiana ' +
    'iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi missouri montana nebraska ' +
    'nevada hampshire jersey mexico york carolina dakota ohio oklahoma oregon pennsylvania rhode tennessee texas utah vermont ' +
    'virginia washington wisconsin wyoming london paris berlin tokyo beijing shanghai delhi mumbai bangalore bengaluru ' +
    'hyderabad chennai kolkata pune boston chicago seattle houston dallas austin atlanta miami denver toronto vancouver ' +
    'sydney melbourne moscow rome madrid barcelona amsterdam istanbul cairo lagos nairobi seoul hong kong taipei manila ' +
    'jakarta bangkok karachi lahore dhaka springfield ' +
    // people and other frequent proper names
    'trump clinton obama modi hillary bernie putin gandhi nehru einstein newton shakespeare jesus christ allah buddha ' +
    'christian christianity islam muslim hindu hinduism jewish judaism buddhism buddhist sikh catholic protestant ' +
    'bitcoin ethereum quran bible'
  ).split(' '),
);
